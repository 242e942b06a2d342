// Anchors the precompiled header (torch, Catch2, Eigen) that every test executable reuses.
