"""Optional judge score: a model behind an OpenAI-compatible endpoint rates each analysis 1-10.

The judge sees the gold label, the gold AUs and the reference analysis when the benchmark
has them, and the analysis (prompts/judge.jinja); it answers "Score: N". Scores are kept
in RUN_DIR/judge.jsonl, so a resumed run only asks about the rows it has no score for; a
reply without a score is kept as None (and the reply text, for inspection).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..endpoint import ChatEndpoint, EndpointError
from ..prompting import load_template

JUDGE_FILE = "judge.jsonl"


def parse_score(reply: str) -> int | None:
    """The 1-10 score in a judge's reply.

    >>> parse_score("Score: 7"), parse_score("I would give it 8/10."), parse_score("no idea")
    (7, 8, None)
    """
    match = re.search(r"score\W*(10|[1-9])\b", reply, flags=re.IGNORECASE) or re.search(
        r"\b(10|[1-9])\s*/\s*10", reply
    )
    return int(match.group(1)) if match else None


class Judge:
    def __init__(self, base_url: str, model: str | None, api_key: str | None = None, concurrency: int = 8):
        if not model:
            raise ValueError("--judge-url needs --judge-model (the judge's served model name)")
        self.endpoint = ChatEndpoint(base_url, model, api_key=api_key, concurrency=concurrency, max_tokens=32,
                                     temperature=0.0)  # fmt: skip

    def prompt(self, row: dict[str, Any]) -> str:
        aus = [f"AU{c}" for c in row.get("gold_aus") or []]
        template = load_template("judge")
        text = template.render(
            gold_emotion=row.get("gold_emotion"),
            gold_aus=aus,
            reference=row.get("reference"),
            text=row.get("text", ""),
        )
        return text.strip()

    def score(self, row: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = self.endpoint.text([{"role": "user", "content": self.prompt(row)}])
        except EndpointError as exc:
            return {"id": row["id"], "judge": None, "reply": "", "error": str(exc)}
        return {"id": row["id"], "judge": parse_score(reply), "reply": reply, "error": None}

    def run(self, rows: Sequence[dict[str, Any]], out: Path) -> dict[str, dict[str, Any]]:
        """Scores for every answered row (asking only about those not in judge.jsonl yet), by id."""
        path = Path(out) / JUDGE_FILE
        done = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                done[entry["id"]] = entry
        todo = [r for r in rows if not r.get("error") and r["id"] not in done]
        with ThreadPoolExecutor(max_workers=self.endpoint.concurrency) as pool, open(path, "a") as fh:
            for entry in pool.map(self.score, todo):
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
                fh.flush()
                done[entry["id"]] = entry
        return done
