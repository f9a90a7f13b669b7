// Integration tests wait on real services (rollups, namespace deletion, garbage collection): allow them time.
jest.setTimeout(120_000);
