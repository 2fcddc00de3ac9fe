"""Telemetry: the MQTT gateway, readings, dead letters and hourly consumption."""
