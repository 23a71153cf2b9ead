"""The semantic layer: reuse the answer to a cached prompt that means the same as the new one.

A prompt is embedded with `strategies.models.embeddings` and compared (cosine) with the cached prompts of its
bucket only — same model, endpoint, parameters, system prompt and history (`strategies.cache.keys`) —
the most recently used `max_candidates` of them. A hit needs the similarity to reach the threshold AND
the two prompts to carry the same *literals*.

Why the literal guard: embeddings place "Is 91 prime?" and "Is 97 prime?" almost on top of each other
(they differ in one token of many), yet their answers differ. Whatever decides the answer precisely —
numbers, quoted strings, names, code identifiers, units of measure, a negation (`not`, `unsafe`) — must
be identical and in the same order; only the wording around them may change. A paraphrase keeps those
("What's the capital of France?" / "Tell me France's capital"); a near-miss changes one ("...of
Spain?"). The guard cannot see a change of an ordinary word ("boiling point" / "melting point",
"decorator" / "generator"): that is left to the threshold, and is why the layer is off by default.
"""

from __future__ import annotations

from dataclasses import dataclass

from chorus_mcp.strategies.cache.settings import SemanticSettings
from chorus_mcp.strategies.cache.store import CacheEntry
from chorus_mcp.strategies.core.literals import literals
from chorus_mcp.strategies.models.embeddings import aembed


@dataclass(frozen=True)
class Match:
    entry: CacheEntry
    similarity: float


class SemanticMatcher:
    def __init__(self, settings: SemanticSettings) -> None:
        self.settings = settings

    async def embed(self, prompt: str) -> list[float]:
        """The prompt's unit-length embedding."""
        embedded = await aembed(self.settings.embedder, [prompt])
        return [float(x) for x in embedded.vectors[0]]

    def best(self, prompt: str, vector: list[float], candidates: list[CacheEntry]) -> Match | None:
        """The most similar candidate at or above the threshold whose literals equal the prompt's."""
        wanted = literals(prompt)
        best: Match | None = None
        for entry in candidates:
            if entry.embedding is None or len(entry.embedding) != len(vector):
                continue  # written by another embedder
            similarity = sum(a * b for a, b in zip(vector, entry.embedding, strict=True))
            if similarity < self.settings.threshold or (best is not None and similarity <= best.similarity):
                continue
            if literals(entry.prompt) == wanted:
                best = Match(entry, min(1.0, similarity))
        return best
