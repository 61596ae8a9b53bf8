"""Prometheus/OpenMetrics exporter of the appliance's metrics, read from VPP's stats segment (see README.md)."""
