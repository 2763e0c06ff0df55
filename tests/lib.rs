//! The VM scenario suite lives in `vm/` (a `harness = false` test target); this library is
//! empty and exists only because a package needs a target besides its tests.
