"""Management plane of the vpp-singbox appliance."""
