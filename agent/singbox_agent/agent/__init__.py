"""singbox-agent: keeps VPP's singbox plugin equal to the vpp-singbox YANG configuration in sysrepo."""
