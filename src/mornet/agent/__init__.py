"""The edge agent: reads plugs and meters, buffers every reading in SQLite, publishes signed
batches over MQTT and deletes them only once the broker acknowledged them.

Runs with the `agent` extra only (pydantic, paho-mqtt, httpx, cryptography); the Tapo driver
needs the `tapo` extra (python-kasa)."""
