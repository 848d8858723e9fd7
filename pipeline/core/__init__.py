"""The foundation every layer stands on, importing no torch: paths, params, ids, the experiments registry,
fingerprints of code and data, records and outputs."""
