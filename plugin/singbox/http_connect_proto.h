/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * HTTP CONNECT (RFC 9110 section 9.3.6) with Basic proxy authentication (RFC 7617, RFC 9110
 * section 11.7) as a sans-IO core, like socks5_proto.h: the caller owns the connections, this
 * code turns received bytes into events and writes the bytes to send. No VPP headers, no
 * allocation, no global state.
 *
 * Client role (client mode, upstream is sing-box's `http` inbound or any HTTP proxy):
 *
 *   n = http_connect_request_write (buf, sizeof (buf), host, host_len, port, user, .., pass, ..);
 *   send buf[0 .. n); http_connect_client_init (&c);
 *   loop: t = http_connect_client_feed (&c, data, len, &consumed, &ev); dequeue `consumed`;
 *     HTTP_CONNECT_EV_NEED_DATA  all offered bytes consumed: feed again when more arrive
 *     HTTP_CONNECT_EV_CONNECTED  a 2xx final response: the tunnel is open; bytes after the
 *                                header block were not consumed and belong to the tunnel
 *     HTTP_CONNECT_EV_ERROR      ev.error says why, ev.status the status received (0 if none)
 *
 * Server role (server mode, the SOCKS5 listener answering HTTP CONNECT on the same port):
 *
 *   http_connect_server_init (&s);
 *   loop: t = http_connect_server_feed (&s, data, len, &consumed, &ev, &out); dequeue `consumed`;
 *     send out whatever t is;
 *     HTTP_CONNECT_EV_NEED_DATA  as above
 *     HTTP_CONNECT_EV_REQUEST    ev.host/ev.port: the target; ev.auth: Proxy-Authorization was
 *                                Basic and well formed (ev.username/ev.password); then
 *                                http_connect_server_reply () with 200 once connected, 407 when
 *                                the credentials do not do, or the upstream failure's status
 *     HTTP_CONNECT_EV_ERROR      the request was refused (out holds the response): close
 *
 * Both roles consume the header block and never one byte more. Input may be split at any byte:
 * feeding the same bytes in any split gives the same events, output and consumption. Lines end
 * in CRLF or a lone LF (RFC 9112 section 2.2 allows a recipient that); a CR not followed by LF is
 * an error. Sizes are bounded: a line, the header block and the number of header fields.
 */

#ifndef included_http_connect_proto_h
#define included_http_connect_proto_h

#include <stdint.h>

#define HTTP_CONNECT_MAX_HOST_LEN 255
#define HTTP_CONNECT_MAX_CRED_LEN 255
/* The client keeps the status line only; longer ones are refused. */
#define HTTP_CONNECT_CLIENT_LINE_MAX 256
/* The server keeps each line it parses: request line and header fields. */
#define HTTP_CONNECT_SERVER_LINE_MAX 1024
/* Whole header block, status/request line included, and header fields in it. */
#define HTTP_CONNECT_MAX_HEAD	 8192
#define HTTP_CONNECT_MAX_HEADERS 64
/*
 * Longest request the client writes: "CONNECT [host]:65535 HTTP/1.1\r\nHost: [host]:65535\r\n"
 * "Proxy-Authorization: Basic " base64 (user ":" pass) "\r\n\r\n".
 */
#define HTTP_CONNECT_REQUEST_MAX                                                                   \
  (2 * (HTTP_CONNECT_MAX_HOST_LEN + 8) + 64 + 4 * ((2 * HTTP_CONNECT_MAX_CRED_LEN + 1 + 2) / 3) +  \
   64)
/* Longest response the server writes (407 with its challenge). */
#define HTTP_CONNECT_RESPONSE_MAX 256

#define foreach_http_connect_error                                                                 \
  _ (NONE, 1, "no error")                                                                          \
  _ (BAD_STATUS_LINE, 1, "malformed status line")                                                  \
  _ (BAD_REQUEST_LINE, 1, "malformed request line")                                                \
  _ (BAD_METHOD, 1, "method is not CONNECT")                                                       \
  _ (BAD_TARGET, 1, "request target is not host:port")                                             \
  _ (BAD_VERSION, 1, "HTTP version is not 1.x")                                                    \
  _ (BAD_HEADER, 1, "malformed header field")                                                      \
  _ (BAD_CONTENT, 1, "CONNECT request with content")                                               \
  _ (BARE_CR, 1, "CR not followed by LF")                                                          \
  _ (LINE_TOO_LONG, 1, "line too long")                                                            \
  _ (HEAD_TOO_LARGE, 1, "header block too large")                                                  \
  _ (TOO_MANY_HEADERS, 1, "too many header fields")                                                \
  _ (AUTH_REQUIRED, 1, "proxy authentication required (407)")                                      \
  _ (REFUSED, 1, "proxy refused the tunnel (non-2xx status)")                                      \
  _ (CLOSED, 0, "handshake already ended")                                                         \
  _ (STATE, 0, "call not valid in this state")                                                     \
  _ (BAD_ARGUMENT, 0, "invalid argument")                                                          \
  _ (NO_SPACE, 0, "output buffer too small")

typedef enum
{
#define _(sym, remote, str) HTTP_CONNECT_ERR_##sym,
  foreach_http_connect_error
#undef _
    HTTP_CONNECT_N_ERROR,
} http_connect_error_t;

#define foreach_http_connect_event                                                                 \
  _ (NEED_DATA, "need-data")                                                                       \
  _ (REQUEST, "request")                                                                           \
  _ (CONNECTED, "connected")                                                                       \
  _ (ERROR, "error")                                                                               \
  _ (PAUSED, "paused")

typedef enum
{
#define _(sym, str) HTTP_CONNECT_EV_##sym,
  foreach_http_connect_event
#undef _
    HTTP_CONNECT_N_EVENT,
} http_connect_event_type_t;

#define foreach_http_connect_state                                                                 \
  _ (START_LINE, "start-line")                                                                     \
  _ (HEADERS, "headers")                                                                           \
  _ (REPLY_WAIT, "reply-wait")                                                                     \
  _ (ESTABLISHED, "established")                                                                   \
  _ (CLOSED, "closed")

typedef enum
{
#define _(sym, str) HTTP_CONNECT_##sym,
  foreach_http_connect_state
#undef _
    HTTP_CONNECT_N_STATE,
} http_connect_state_t;

typedef struct
{
  http_connect_event_type_t type;
  http_connect_error_t error; /* ERROR */
  uint16_t status;	      /* client: status received; server ERROR: status sent */
  /* server REQUEST: point into the state struct, valid until the next call on it */
  const char *host; /* without brackets for an IPv6 literal; NUL-terminated */
  uint8_t host_len;
  uint8_t host_is_ip6; /* the target was [IPv6] */
  uint16_t port;
  uint8_t auth; /* a well-formed Basic Proxy-Authorization came */
  const uint8_t *username;
  const uint8_t *password;
  uint8_t username_len;
  uint8_t password_len;
} http_connect_event_t;

typedef struct
{
  uint16_t len;
  uint8_t data[HTTP_CONNECT_RESPONSE_MAX];
} http_connect_out_t;

/* Line reader shared by both roles. Opaque. */
typedef struct
{
  uint32_t head_len;
  uint16_t line_len; /* may exceed what is kept: then the line is too long */
  uint8_t n_fields;
  uint8_t cr;
} http_connect_reader_t;

/* Opaque to callers: read it through the accessors. */
typedef struct
{
  uint8_t state; /* http_connect_state_t */
  uint8_t error;
  uint8_t interim; /* in the header block of a 1xx response */
  uint16_t status;
  http_connect_reader_t r;
  char line[HTTP_CONNECT_CLIENT_LINE_MAX];
} http_connect_client_t;

typedef struct
{
  uint8_t state;
  uint8_t error;
  uint16_t status; /* sent */
  uint16_t port;
  uint8_t host_len;
  uint8_t host_is_ip6;
  uint8_t auth_seen; /* a Proxy-Authorization field came (well formed or not) */
  uint8_t auth_ok;   /* ... and it was Basic with user:pass */
  uint8_t username_len;
  uint8_t password_len;
  char host[HTTP_CONNECT_MAX_HOST_LEN + 1];
  uint8_t username[HTTP_CONNECT_MAX_CRED_LEN];
  uint8_t password[HTTP_CONNECT_MAX_CRED_LEN];
  http_connect_reader_t r;
  char line[HTTP_CONNECT_SERVER_LINE_MAX];
} http_connect_server_t;

/*
 * Client role. Writes the CONNECT request for host:port (a name, an IPv4 literal or an IPv6
 * literal without brackets) with Basic credentials when user_len > 0. Returns the length written,
 * or -HTTP_CONNECT_ERR_BAD_ARGUMENT (empty or too long host, a host byte that is not allowed in an
 * authority, port 0, a username with ':' or a control byte in either credential, a password
 * without a username) or -HTTP_CONNECT_ERR_NO_SPACE.
 */
int http_connect_request_write (uint8_t *out, uint32_t cap, const char *host, uint32_t host_len,
				uint16_t port, const uint8_t *user, uint32_t user_len,
				const uint8_t *pass, uint32_t pass_len);
/*
 * A health probe's request: "OPTIONS * HTTP/1.1" with the credentials. A proxy checks them before
 * anything else and answers 407 when they do not do; any other well-formed response (sing-box
 * answers 400) says the proxy is up and speaks HTTP, without making it connect anywhere. Read
 * the response with the client role: CONNECTED or REFUSED is up, AUTH_REQUIRED is refused
 * credentials. Returns as http_connect_request_write.
 */
int http_connect_probe_write (uint8_t *out, uint32_t cap, const uint8_t *user, uint32_t user_len,
			      const uint8_t *pass, uint32_t pass_len);
void http_connect_client_init (http_connect_client_t *c);
http_connect_event_type_t http_connect_client_feed (http_connect_client_t *c, const uint8_t *data,
						    uint32_t len, uint32_t *consumed,
						    http_connect_event_t *ev);
http_connect_state_t http_connect_client_state (const http_connect_client_t *c);
http_connect_error_t http_connect_client_error (const http_connect_client_t *c);

/* Server role. */
void http_connect_server_init (http_connect_server_t *s);
http_connect_event_type_t http_connect_server_feed (http_connect_server_t *s, const uint8_t *data,
						    uint32_t len, uint32_t *consumed,
						    http_connect_event_t *ev,
						    http_connect_out_t *out);
/*
 * After REQUEST: the response for status (200 opens the tunnel; 407 carries the Basic challenge;
 * anything else closes: send out, then close). HTTP_CONNECT_ERR_STATE if no request waits,
 * BAD_ARGUMENT for a status outside 200..599.
 */
http_connect_error_t http_connect_server_reply (http_connect_server_t *s, uint16_t status,
						http_connect_out_t *out);
/*
 * Ends the handshake early (timeout, session limit): a response with status if the request
 * line has not been refused already (408 for a timeout, 503 for a limit), then close.
 */
http_connect_error_t http_connect_server_abort (http_connect_server_t *s, uint16_t status,
						http_connect_out_t *out);
http_connect_state_t http_connect_server_state (const http_connect_server_t *s);
http_connect_error_t http_connect_server_error (const http_connect_server_t *s);

/*
 * The status a proxy answers for a SOCKS5 REP code (RFC 1928) describing an upstream outcome:
 * 0 -> 200, not allowed -> 403, TTL expired (timeout) -> 504, anything else -> 502.
 */
uint16_t http_connect_status_from_rep (uint8_t rep);
/* The first byte of a connection on a port that speaks both: an HTTP method starts with a letter.
 */
int http_connect_is_http_start (uint8_t first_byte);
/* Names for show output and logs; never NULL. */
const char *http_connect_error_name (http_connect_error_t err);
int http_connect_error_is_remote (http_connect_error_t err);
const char *http_connect_event_name (http_connect_event_type_t type);
const char *http_connect_state_name (http_connect_state_t state);
const char *http_connect_reason_phrase (uint16_t status);

#endif /* included_http_connect_proto_h */
