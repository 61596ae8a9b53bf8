/* SPDX-License-Identifier: Apache-2.0
 * Copyright (c) 2026 vpp-singbox authors
 */

/*
 * SOCKS5 (RFC 1928) and username/password authentication (RFC 1929) as a sans-IO core: the caller
 * owns the sockets (VPP fifos), this code only turns received bytes into events and bytes to send.
 * No VPP headers, no allocation, no global state: every function works on a caller-owned struct,
 * so the same code runs inside a VPP session context, in unit tests and under libFuzzer.
 *
 * Server role, per accepted TCP connection:
 *
 *   socks5_server_init (&s, &cfg);
 *   loop:
 *     t = socks5_server_feed (&s, data, len, &consumed, &ev, &out);
 *     dequeue `consumed` bytes; send out.data[0 .. out.len) whatever t is;
 *     SOCKS5_EV_NEED_DATA    all offered bytes were consumed: feed again if the fifo holds more
 *                            than was offered (a peek capped at a buffer size), else wait
 *     SOCKS5_EV_AUTH_REQUEST check ev.username/ev.password, then socks5_server_auth_result ()
 *     SOCKS5_EV_REQUEST      connect ev.addr (or set up the UDP relay), then socks5_server_reply ()
 *                            with a REP code (socks5_rep_from_reason ()) once the outcome is known;
 *                            never before: success before connect is a known bug class
 *     SOCKS5_EV_ERROR        close after sending out (ev.error says why, ev.rep the code sent)
 *     SOCKS5_EV_PAUSED       the core takes no bytes now: waiting for the caller, or established
 *
 * Client role, per relayed connection: socks5_client_init () writes the greeting into out, then
 * socks5_client_feed () consumes the server's messages and writes the follow-up messages, until
 * SOCKS5_EV_CONNECTED (ev.addr = BND) or SOCKS5_EV_ERROR (ev.rep = the server's REP code).
 * Pipelined (cfg.pipeline): init writes greeting, auth and request at once and feed writes
 * nothing; with cfg.defer_request the request is left out, feed returns SOCKS5_EV_READY once
 * authenticated (PAUSED after that), and socks5_client_request () writes it when a flow needs it.
 *
 * Both roles consume exactly the bytes of the handshake and never one byte more: whatever follows
 * the last handshake message belongs to the relay and stays with the caller. Input may be split at
 * any byte and messages may be pipelined; feeding the same bytes in any split gives the same
 * events and the same output.
 */

#ifndef included_socks5_proto_h
#define included_socks5_proto_h

#include <stdint.h>

#define SOCKS5_VERSION		0x05
#define SOCKS5_AUTH_VERSION	0x01 /* RFC 1929 sub-negotiation */
#define SOCKS5_AUTH_STATUS_OK	0x00
#define SOCKS5_AUTH_STATUS_FAIL 0x01
#define SOCKS5_MAX_DOMAIN_LEN	255
#define SOCKS5_MAX_CRED_LEN	255
/* Largest handshake message either side receives or sends: the RFC 1929 request. */
#define SOCKS5_MAX_MSG_LEN (3 + 2 * SOCKS5_MAX_CRED_LEN)
/* Longest request or reply: VER CMD|REP RSV ATYP, 1 + 255 domain, PORT. */
#define SOCKS5_MAX_REPLY_LEN (4 + 1 + SOCKS5_MAX_DOMAIN_LEN + 2)
/*
 * Most one call can produce: a pipelined client's init writes the greeting (one method), the
 * RFC 1929 request and the SOCKS request; a client fed the method choice and the auth status
 * together writes the last two. No call ever runs out of space in a socks5_out_t.
 */
#define SOCKS5_OUT_MAX (3 + SOCKS5_MAX_MSG_LEN + SOCKS5_MAX_REPLY_LEN)
/* RSV(2) FRAG(1) ATYP(1) + longest address (1 + 255 domain) + PORT(2). */
#define SOCKS5_UDP_HEADER_MAX_LEN (4 + 1 + SOCKS5_MAX_DOMAIN_LEN + 2)

/* Authentication methods (RFC 1928 section 3). */
#define SOCKS5_METHOD_NO_AUTH	    0x00
#define SOCKS5_METHOD_GSSAPI	    0x01
#define SOCKS5_METHOD_USERPASS	    0x02
#define SOCKS5_METHOD_NO_ACCEPTABLE 0xff

/* Bits for socks5_server_cfg_t.methods. */
#define SOCKS5_METHOD_F_NO_AUTH	 (1 << 0)
#define SOCKS5_METHOD_F_USERPASS (1 << 1)

/* Commands (RFC 1928 section 4). */
#define SOCKS5_CMD_CONNECT	 0x01
#define SOCKS5_CMD_BIND		 0x02
#define SOCKS5_CMD_UDP_ASSOCIATE 0x03

/* Bits for socks5_server_cfg_t.commands. BIND is never implemented: it always gets REP 0x07. */
#define SOCKS5_CMD_F_CONNECT	   (1 << 0)
#define SOCKS5_CMD_F_UDP_ASSOCIATE (1 << 1)

/* Address types. */
#define SOCKS5_ATYP_IPV4   0x01
#define SOCKS5_ATYP_DOMAIN 0x03
#define SOCKS5_ATYP_IPV6   0x04

/* Reply codes: symbol, value, RFC 1928 text. */
#define foreach_socks5_rep                                                                         \
  _ (SUCCEEDED, 0x00, "succeeded")                                                                 \
  _ (GENERAL_FAILURE, 0x01, "general SOCKS server failure")                                        \
  _ (NOT_ALLOWED, 0x02, "connection not allowed by ruleset")                                       \
  _ (NETWORK_UNREACHABLE, 0x03, "network unreachable")                                             \
  _ (HOST_UNREACHABLE, 0x04, "host unreachable")                                                   \
  _ (CONNECTION_REFUSED, 0x05, "connection refused")                                               \
  _ (TTL_EXPIRED, 0x06, "TTL expired")                                                             \
  _ (COMMAND_NOT_SUPPORTED, 0x07, "command not supported")                                         \
  _ (ADDRESS_TYPE_NOT_SUPPORTED, 0x08, "address type not supported")

typedef enum
{
#define _(sym, val, str) SOCKS5_REP_##sym = val,
  foreach_socks5_rep
#undef _
} socks5_rep_t;

/*
 * Why an upstream connection failed, as the caller knows it; socks5_rep_from_reason () turns it
 * into the REP code. RFC 1928 has no code for a failed name lookup: DNS_FAILURE maps to 0x04 (host
 * unreachable) like Dante and 3proxy, because to the client an unresolvable name is a host it
 * cannot reach, and 0x01 would hide the cause among our own faults.
 */
#define foreach_socks5_reason                                                                      \
  _ (OTHER, SOCKS5_REP_GENERAL_FAILURE, "other failure")                                           \
  _ (DENIED, SOCKS5_REP_NOT_ALLOWED, "denied by ruleset")                                          \
  _ (NETWORK_UNREACHABLE, SOCKS5_REP_NETWORK_UNREACHABLE, "network unreachable")                   \
  _ (HOST_UNREACHABLE, SOCKS5_REP_HOST_UNREACHABLE, "host unreachable")                            \
  _ (DNS_FAILURE, SOCKS5_REP_HOST_UNREACHABLE, "name resolution failed")                           \
  _ (CONNECTION_REFUSED, SOCKS5_REP_CONNECTION_REFUSED, "connection refused")                      \
  _ (TIMEOUT, SOCKS5_REP_TTL_EXPIRED, "connect timed out")                                         \
  _ (BAD_COMMAND, SOCKS5_REP_COMMAND_NOT_SUPPORTED, "command not supported")                       \
  _ (BAD_ADDRESS_TYPE, SOCKS5_REP_ADDRESS_TYPE_NOT_SUPPORTED, "address type not supported")

typedef enum
{
#define _(sym, rep, str) SOCKS5_REASON_##sym,
  foreach_socks5_reason
#undef _
    SOCKS5_N_REASON,
} socks5_reason_t;

/*
 * Errors: symbol, REP code hint, remote (1: the peer broke the protocol or refused; 0: the caller
 * misused the API), text. Remote errors arrive as SOCKS5_EV_ERROR; local ones are return values.
 */
#define foreach_socks5_error                                                                       \
  _ (NONE, 0x00, 0, "no error")                                                                    \
  _ (BAD_VERSION, 0x01, 1, "SOCKS version is not 5")                                               \
  _ (NO_METHODS, 0x01, 1, "greeting offers no authentication method")                              \
  _ (NO_ACCEPTABLE_METHOD, 0x01, 1, "no acceptable authentication method")                         \
  _ (BAD_AUTH_VERSION, 0x01, 1, "username/password sub-negotiation version is not 1")              \
  _ (AUTH_FAILED, 0x01, 1, "username/password authentication failed")                              \
  _ (COMMAND_NOT_SUPPORTED, 0x07, 1, "command not supported")                                      \
  _ (ADDRESS_TYPE_NOT_SUPPORTED, 0x08, 1, "address type not supported")                            \
  _ (BAD_DOMAIN, 0x04, 1, "domain name is empty or contains NUL")                                  \
  _ (METHOD_NOT_OFFERED, 0x01, 1, "server chose a method the client did not offer")                \
  _ (REQUEST_FAILED, 0x01, 1, "request failed (REP != 0)")                                         \
  _ (UDP_FRAGMENTED, 0x01, 1, "UDP datagram is a fragment (FRAG != 0)")                            \
  _ (TRUNCATED, 0x01, 1, "message truncated")                                                      \
  _ (ABORTED, 0x01, 0, "handshake aborted by the caller")                                          \
  _ (CLOSED, 0x01, 0, "handshake already ended")                                                   \
  _ (STATE, 0x01, 0, "call not valid in this state")                                               \
  _ (BAD_ARGUMENT, 0x01, 0, "invalid argument")                                                    \
  _ (NO_SPACE, 0x01, 0, "output buffer too small")

typedef enum
{
#define _(sym, rep, remote, str) SOCKS5_ERR_##sym,
  foreach_socks5_error
#undef _
    SOCKS5_N_ERROR,
} socks5_error_t;

#define foreach_socks5_event                                                                       \
  _ (NEED_DATA, "need-data")                                                                       \
  _ (AUTH_REQUEST, "auth-request")                                                                 \
  _ (REQUEST, "request")                                                                           \
  _ (CONNECTED, "connected")                                                                       \
  _ (READY, "ready")                                                                               \
  _ (ERROR, "error")                                                                               \
  _ (PAUSED, "paused")

typedef enum
{
#define _(sym, str) SOCKS5_EV_##sym,
  foreach_socks5_event
#undef _
    SOCKS5_N_EVENT,
} socks5_event_type_t;

#define foreach_socks5_server_state                                                                \
  _ (GREETING, "greeting")                                                                         \
  _ (AUTH, "auth")                                                                                 \
  _ (AUTH_WAIT, "auth-wait")                                                                       \
  _ (REQUEST, "request")                                                                           \
  _ (REPLY_WAIT, "reply-wait")                                                                     \
  _ (ESTABLISHED, "established")                                                                   \
  _ (CLOSED, "closed")

typedef enum
{
#define _(sym, str) SOCKS5_SERVER_##sym,
  foreach_socks5_server_state
#undef _
    SOCKS5_SERVER_N_STATE,
} socks5_server_state_t;

#define foreach_socks5_client_state                                                                \
  _ (METHOD, "method")                                                                             \
  _ (AUTH, "auth")                                                                                 \
  _ (READY, "ready")                                                                               \
  _ (REPLY, "reply")                                                                               \
  _ (CONNECTED, "connected")                                                                       \
  _ (CLOSED, "closed")

typedef enum
{
#define _(sym, str) SOCKS5_CLIENT_##sym,
  foreach_socks5_client_state
#undef _
    SOCKS5_CLIENT_N_STATE,
} socks5_client_state_t;

/* A SOCKS5 address as on the wire: IPs in network byte order, port in host byte order. */
typedef struct
{
  uint8_t atyp; /* SOCKS5_ATYP_* */
  uint8_t domain_len;
  uint16_t port;
  union
  {
    uint8_t ip4[4];
    uint8_t ip6[16];
    /* NUL-terminated for convenience; NUL inside a requested domain is rejected. */
    uint8_t domain[SOCKS5_MAX_DOMAIN_LEN + 1];
  };
} socks5_addr_t;

/* Bytes to send to the peer; every call that produces bytes overwrites it. */
typedef struct
{
  uint16_t len;
  uint8_t data[SOCKS5_OUT_MAX];
} socks5_out_t;

typedef struct
{
  socks5_event_type_t type;
  socks5_error_t error; /* ERROR */
  uint8_t remote;	/* ERROR: 1 when the peer caused it */
  uint8_t rep;		/* ERROR: server: REP sent (or hint); client: REP received */
  uint8_t method;	/* auth method chosen in the greeting */
  uint8_t cmd;		/* REQUEST: SOCKS5_CMD_* */
  /* AUTH_REQUEST: point into the state struct, valid until the next call on it. */
  const uint8_t *username;
  const uint8_t *password;
  uint8_t username_len;
  uint8_t password_len;
  socks5_addr_t addr; /* REQUEST: DST.ADDR/PORT; CONNECTED: BND.ADDR/PORT */
} socks5_event_t;

typedef struct
{
  uint8_t methods;  /* SOCKS5_METHOD_F_*; when both, username/password wins if offered */
  uint8_t commands; /* SOCKS5_CMD_F_* */
} socks5_server_cfg_t;

/* Opaque to callers: read it only through the accessors and format helpers below. */
typedef struct
{
  uint8_t state; /* socks5_server_state_t */
  uint8_t methods;
  uint8_t commands;
  uint8_t method;
  uint8_t error; /* socks5_error_t that closed the handshake */
  uint8_t rep;
  uint16_t rx_len;
  uint8_t rx[SOCKS5_MAX_MSG_LEN];
} socks5_server_t;

typedef struct
{
  uint8_t cmd;		   /* SOCKS5_CMD_CONNECT or SOCKS5_CMD_UDP_ASSOCIATE */
  socks5_addr_t dst;	   /* for UDP ASSOCIATE: the address the client will send from, or zeros */
  const uint8_t *username; /* NULL: offer no-auth only; else offer no-auth and username/password */
  const uint8_t *password;
  uint8_t username_len;
  uint8_t password_len;
  /*
   * One write instead of up to three round trips: the greeting offers exactly one method
   * (username/password with credentials, else no-auth), so the server's choice is known in
   * advance and init writes the RFC 1929 request and the SOCKS request right after it. A server
   * choosing anything else is METHOD_NOT_OFFERED (it would misread the pipelined bytes).
   */
  uint8_t pipeline;
  /*
   * With pipeline: init leaves the SOCKS request out (cmd and dst unused); the handshake stops in
   * state READY once authenticated and socks5_client_request () sends it later, e.g. when a flow
   * takes a pooled, pre-authenticated connection. It may also be sent before READY.
   */
  uint8_t defer_request;
} socks5_client_cfg_t;

typedef struct
{
  uint8_t state; /* socks5_client_state_t */
  uint8_t cmd;
  uint8_t offer_userpass;
  uint8_t pipeline;
  uint8_t request_sent;
  uint8_t method;
  uint8_t error;
  uint8_t rep;
  uint8_t username_len;
  uint8_t password_len;
  uint16_t rx_len;
  uint8_t rx[SOCKS5_MAX_REPLY_LEN];
  socks5_addr_t dst;
  uint8_t username[SOCKS5_MAX_CRED_LEN];
  uint8_t password[SOCKS5_MAX_CRED_LEN];
} socks5_client_t;

typedef struct
{
  uint8_t frag;
  socks5_addr_t addr;
} socks5_udp_header_t;

/* Server role. */
socks5_error_t socks5_server_init (socks5_server_t *s, const socks5_server_cfg_t *cfg);
socks5_event_type_t socks5_server_feed (socks5_server_t *s, const uint8_t *data, uint32_t len,
					uint32_t *consumed, socks5_event_t *ev, socks5_out_t *out);
/* After AUTH_REQUEST. Returns SOCKS5_ERR_AUTH_FAILED when !ok: send out, then close. */
socks5_error_t socks5_server_auth_result (socks5_server_t *s, int ok, socks5_out_t *out);
/*
 * After REQUEST, once the upstream outcome is known. bnd NULL sends 0.0.0.0:0. A non-zero rep
 * closes the handshake: send out, then close.
 */
socks5_error_t socks5_server_reply (socks5_server_t *s, uint8_t rep, const socks5_addr_t *bnd,
				    socks5_out_t *out);
/*
 * Ends the handshake early (handshake timeout, connection limit, session killed): a pending
 * request gets a reply with the REP for reason; before the request nothing is sent. Then close.
 */
socks5_error_t socks5_server_abort (socks5_server_t *s, socks5_reason_t reason, socks5_out_t *out);
socks5_server_state_t socks5_server_state (const socks5_server_t *s);
/* 1 while the handshake waits for the client's next message (credentials or request) and holds
 * no part of it: the client has every answer so far and its next bytes start a message. */
int socks5_server_awaits_message (const socks5_server_t *s);
socks5_error_t socks5_server_error (const socks5_server_t *s);

/* Client role. Writes the greeting (pipelined: and what follows it, see cfg) into out. */
socks5_error_t socks5_client_init (socks5_client_t *c, const socks5_client_cfg_t *cfg,
				   socks5_out_t *out);
/*
 * Pipelined client created with defer_request: writes the SOCKS request for cmd/dst into out.
 * Valid once, in any state before CLOSED (READY moves to REPLY); SOCKS5_ERR_STATE otherwise.
 */
socks5_error_t socks5_client_request (socks5_client_t *c, uint8_t cmd, const socks5_addr_t *dst,
				      socks5_out_t *out);
socks5_event_type_t socks5_client_feed (socks5_client_t *c, const uint8_t *data, uint32_t len,
					uint32_t *consumed, socks5_event_t *ev, socks5_out_t *out);
socks5_client_state_t socks5_client_state (const socks5_client_t *c);
socks5_error_t socks5_client_error (const socks5_client_t *c);

/*
 * UDP request header (RFC 1928 section 7). parse returns the header length (payload follows) or
 * -socks5_error_t: FRAG != 0 gives -SOCKS5_ERR_UDP_FRAGMENTED (h->frag is set) and the datagram
 * must be dropped, since fragment reassembly is not implemented. RSV is ignored, as sing-box does.
 */
int socks5_udp_header_parse (const uint8_t *data, uint32_t len, socks5_udp_header_t *h);
/* Returns the header length written, or -SOCKS5_ERR_NO_SPACE / -SOCKS5_ERR_BAD_ARGUMENT. */
int socks5_udp_header_encode (const socks5_addr_t *addr, uint8_t *out, uint32_t out_size);

/* Addresses. set_domain returns SOCKS5_ERR_BAD_ARGUMENT for an empty or too long name. */
void socks5_addr_set_ip4 (socks5_addr_t *a, const uint8_t ip4[4], uint16_t port);
void socks5_addr_set_ip6 (socks5_addr_t *a, const uint8_t ip6[16], uint16_t port);
socks5_error_t socks5_addr_set_domain (socks5_addr_t *a, const uint8_t *name, uint32_t len,
				       uint16_t port);
/* ATYP + address + port, as in requests, replies and UDP headers; 0 if atyp is invalid. */
uint32_t socks5_addr_encoded_len (const socks5_addr_t *a);
int socks5_addr_equal (const socks5_addr_t *a, const socks5_addr_t *b);

/* Reply codes. */
uint8_t socks5_rep_from_reason (socks5_reason_t reason);
/* ENETUNREACH, EHOSTUNREACH, ECONNREFUSED, ETIMEDOUT, EACCES/EPERM; anything else gives 0x01. */
uint8_t socks5_rep_from_errno (int err);

/* Names for format_ functions and show output; never NULL. */
const char *socks5_rep_name (uint8_t rep);
const char *socks5_reason_name (socks5_reason_t reason);
const char *socks5_error_name (socks5_error_t err);
uint8_t socks5_error_rep (socks5_error_t err);
int socks5_error_is_remote (socks5_error_t err);
const char *socks5_event_name (socks5_event_type_t type);
const char *socks5_server_state_name (socks5_server_state_t state);
const char *socks5_client_state_name (socks5_client_state_t state);

#endif /* included_socks5_proto_h */
