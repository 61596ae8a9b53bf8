"""Subscribed notifications and YANG-Push (RFC 8639, RFC 8641) through sysrepo's own implementation (see README.md)."""
