"""The orchestration core of Chorus: strategies over `ModelClient`s, with no knowledge of MCP."""
