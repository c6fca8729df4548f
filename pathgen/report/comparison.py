"""The caption-trained CLIP side by side with its baselines (training.baselines), from the
zero-shot and MIL tables the evaluation stages wrote, with a plain verdict per metric."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Row:
    metric: str
    values: dict[str, str]     # model -> shown value
    scores: dict[str, float]   # model -> the number compared


def compared_models(config: dict) -> list[str]:
    """Main CLIP, then its baselines' encoders (training.baselines), then the features encoder
    (random-init reference in the demo) -- as named in the config dict."""
    tc = config.get("training", {})
    if not tc.get("enabled", True) or not tc.get("baselines"):
        return []
    main = tc.get("register_as", "pathgen-demo-clip")
    models = [main] + [f"{main}-{b}" for b in tc["baselines"]]
    ref = config.get("features", {}).get("encoder")
    return models + ([ref] if ref and ref not in models else [])


def zeroshot_rows(table: Path, models: list[str]) -> list[Row]:
    if not Path(table).exists():
        return []
    df = pd.read_csv(table)
    rows = []
    for (bench, prompting), g in df[df["model"].isin(models)].groupby(["benchmark", "prompting"], sort=True):
        for metric in ("balanced_accuracy", "macro_auroc"):
            g2 = g.set_index("model")
            vals = {m: f"{g2.at[m, metric]:.3f} [{g2.at[m, metric + '_ci_low']:.3f}, "
                       f"{g2.at[m, metric + '_ci_high']:.3f}]" for m in models if m in g2.index}
            rows.append(Row(f"zero-shot {bench} {metric.replace('_', ' ')} ({prompting})", vals,
                            {m: float(g2.at[m, metric]) for m in models if m in g2.index}))
    return rows


def mil_rows(table: Path, models: list[str]) -> list[Row]:
    if not Path(table).exists():
        return []
    df = pd.read_csv(table)
    rows = []
    for (task, model), g in df[df["encoder"].isin(models)].groupby(["task", "model"], sort=True):
        g2 = g.set_index("encoder")
        rows.append(Row(f"MIL {task} {model} AUROC",
                        {e: f"{g2.at[e, 'auroc_mean']:.3f} ± {g2.at[e, 'auroc_sd']:.3f}"
                         for e in models if e in g2.index},
                        {e: float(g2.at[e, "auroc_mean"]) for e in models if e in g2.index}))
    return rows


def verdict(rows: list[Row], main: str, baseline: str) -> str:
    """One plain sentence: on how many metrics the baseline beats the caption-trained CLIP."""
    pairs = [r for r in rows if main in r.scores and baseline in r.scores]
    if not pairs:
        return f"No metric has both {main} and {baseline}."
    wins = [r.metric for r in pairs if r.scores[baseline] > r.scores[main]]
    losses = [r.metric for r in pairs if r.scores[baseline] < r.scores[main]]
    n = len(pairs)
    tied = n - len(wins) - len(losses)
    ties = f", {tied} tied" if tied else ""
    if len(wins) > len(losses):
        return (f"The baseline {baseline} wins: it beats the caption-trained {main} on "
                f"{len(wins)} of {n} metrics ({'; '.join(wins)}){ties}.")
    if not wins:
        return f"The caption-trained {main} beats the baseline {baseline} on {len(losses)} of {n} metrics{ties}."
    return (f"Mixed: the caption-trained {main} is higher on {len(losses)} of {n} metrics, the "
            f"baseline {baseline} on {len(wins)} ({'; '.join(wins)}){ties}.")


def comparison_table(rows: list[Row], models: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"metric": r.metric, **{m: r.values.get(m, "") for m in models}}
                         for r in rows])
