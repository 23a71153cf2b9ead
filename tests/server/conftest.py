from __future__ import annotations

from collections.abc import Iterator

import pytest

from chorus_mcp.config.loader import parse_config
from chorus_mcp.config.schema import ChorusConfig

# Aliases used by the server tests; the clients behind them are scripted per test.
SERVER_TEST_CONFIG = """
models:
  cheap: {model: fake/cheap}
  mid: {model: fake/mid}
  strong: {model: fake/strong}
  coder: {model: fake/coder}
  broken: {model: fake/broken, fallbacks: [strong]}
allow_unlisted_models: false
strategies:
  ensemble: {kind: ensemble, members: [cheap, mid, strong], extract: choice}
  cascade: {kind: cascade, tiers: [cheap, strong], estimator: self_report, threshold: 0.8}
  route:
    kind: route
    default: general
    routes:
      - {name: code, keywords: [python], target: coder}
      - {name: general, target: mid}
  pipeline:
    kind: pipeline
    stages:
      - {name: plan, prompt: "Plan: {input}", step: strong}
      - {name: code, prompt: "Code for {input} following {plan}", step: coder}
      - {name: review, prompt: "Review {code}", step: strong, review: true}
    refine: {stage: code, prompt: "Fix {issues} in {code}", max_iterations: 1}
defaults: {deadline_s: 10}
"""


@pytest.fixture
def server_config() -> Iterator[ChorusConfig]:
    yield parse_config(SERVER_TEST_CONFIG, source="server-test.yaml", env={})
