//! Workload helpers shared by the integration tests.
