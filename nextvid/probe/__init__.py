"""Attentive probing of frozen encoders (docs/method.md §5, docs/probe.md).

protocol: per-benchmark protocols as validated config. encoders: the token sources (checkpoint,
random init, pixels). features: cached / recomputed frozen features. heads: the attentive probe and
its grid. fit: training the grid, exact evaluation, selection rules. metrics_json: metrics.json.
run: one probe run. clips: clip sets from manifests (nextvid.data).
pooled_features: a val split's mean-pooled features for Fig. 7's t-SNE and RankMe.
"""
