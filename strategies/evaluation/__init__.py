"""Offline evaluation of strategies on recorded model outcomes (`chorus-mcp eval`).

- `datasets` — RouterBench CSV and Chorus JSONL recordings, seeded calibration/report splits;
- `grading` — answers graded against the recorded correctness;
- `engine` — strategies run through `run_strategy` on replayed outcomes, on a virtual clock;
- `calibration` — settings chosen on the calibration split to meet a target;
- `router`, `learned_route` — the learned KNN router and its strategy kind;
- `predictor`, `learned_vote` — the correctness predictor, and the step kind that judges a tier's
  answers with it (a learned cascade or vote); `learned_route` routes with it too;
- `config`, `suite`, `report` — the evaluation file, one whole run, and its table/JSON/CSV/PNG.

Core installs can replay (`strategies.models.replay`) and read datasets; running evaluations, routers and
plots needs the `eval` extra (trio, numpy, wordllama, matplotlib).
"""
