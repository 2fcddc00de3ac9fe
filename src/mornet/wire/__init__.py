"""The vocabulary the edge agent, households and the telemetry gateway share: the telemetry
message (topic, canonical JSON, Ed25519 signature, limits) and broker addresses. It sits below
all three and depends on nothing of the platform, so the agent carries no server code."""
