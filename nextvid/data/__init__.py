"""Data: manifests, converters from the usual on-disk benchmark forms, decoding, clip sampling,
transforms, mixtures, clip caches and the embedded default."""
