"""Quality tooling for visual search: real-data readers and the measuring protocols shared
by the benchmarks in bench/ and the quality tests. Not imported by the running shop."""
