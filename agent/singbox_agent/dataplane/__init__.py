"""The dataplane as the agent drives it: the Dataplane interface, VPP (vpp-papi) and in-memory implementations."""
