"""VPP through vpp-papi: placeholder replaced below."""
