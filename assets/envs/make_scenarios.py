"""Writes scenarios/external/{scienceworld,textworld}.yaml and their README from the real engines.

    $(just --quiet external-python) assets/envs/make_scenarios.py [--only scienceworld|textworld]

Each scenario's task text and horizon come from resetting the adapter as leap will (the task as
the student reads it; the expert's plan length), so the files agree with what the servers say.
TextWorld's games are generated into the user cache on the way (tw-make, seconds each), and the
scenarios hold only the arguments that regenerate them, never the game files.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "scenarios", "external")

# ScienceWorld task types with short gold paths (gold lengths of all 30 measured for issue 20).
# The first three are the experiment's (issue 20); the others widen the training set.
SCIENCEWORLD_TYPES = [
    "find-non-living-thing",
    "lifespan-longest-lived",
    "chemistry-mix-paint-secondary-color",
    "find-animal",
    "lifespan-shortest-lived",
    "identify-life-stages-2",
]
VARIATIONS_PER_SPLIT = 8
HORIZON_CAP = 60

# TextWorld games: tw-make arguments (the seed is added per game). tw-simple is TextWorld's own
# small household quest (6 rooms, about 8 commands); "custom" is a two-room, two-command quest that
# a tiny model can finish.
TEXTWORLD_GAMES = {
    "train": [({"game": "tw-simple", "rewards": "dense", "goal": "detailed"}, range(1001, 1011)),
              ({"game": "custom", "world_size": 2, "nb_objects": 4, "quest_length": 2}, range(2001, 2011))],
    "test": [({"game": "tw-simple", "rewards": "dense", "goal": "detailed", "test": True}, range(1101, 1106)),
             ({"game": "custom", "world_size": 2, "nb_objects": 4, "quest_length": 2}, range(2101, 2106))],
}


def adapter(name: str) -> Any:
    """The adapter module, under a name that does not shadow the engine package it wraps."""
    sys.path.insert(0, HERE)
    spec = importlib.util.spec_from_file_location(f"leap_adapter_{name}", os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def horizon(plan_length: int) -> int:
    return min(HORIZON_CAP, int(plan_length * 1.5 + 5 + 0.999))


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a YAML double-quoted scalar


def mapping(values: Dict[str, Any]) -> str:
    return "{" + ", ".join(f"{key}: {scalar(value)}" for key, value in values.items()) + "}"


def write(path: str, header: str, scenarios: List[Dict[str, Any]]) -> None:
    lines = [f"# {line}".rstrip() for line in header.strip().splitlines()] + [""]
    for s in scenarios:
        lines += [
            f"- id: {s['id']}",
            "  kind: external",
            f"  split: {s['split']}",
            f"  task: {scalar(s['task'])}",
            f"  horizon: {s['horizon']}",
            "  world:",
            f"    server: {{adapter: {s['adapter']}}}",
            f"    reset: {mapping(s['reset'])}",
            f"    task_type: {s['task_type']}",
        ]
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)
    print(f"wrote {len(scenarios)} scenarios to {os.path.relpath(path, ROOT)}", file=sys.stderr)


def scienceworld() -> List[Dict[str, Any]]:
    env = adapter("scienceworld").ScienceWorld()
    engine = None
    scenarios = []
    try:
        for task_type in SCIENCEWORLD_TYPES:
            env.reset(task=task_type, variation=0)
            engine = env._engine
            splits = {
                "train": list(engine.get_variations_train())[:VARIATIONS_PER_SPLIT],
                "test": list(engine.get_variations_test())[:VARIATIONS_PER_SPLIT],
            }
            for split, variations in splits.items():
                for variation in variations:
                    reset = {"task": task_type, "variation": variation, "simplification": "easy"}
                    obs = env.reset(**reset)
                    gold = len(obs.privileged["plan"])
                    scenarios.append({
                        "id": f"scienceworld-{task_type}-v{variation}",
                        "split": split,
                        "task": obs.task,
                        "horizon": horizon(gold),
                        "adapter": "scienceworld",
                        "reset": reset,
                        "task_type": task_type,
                        "gold": gold,
                    })
                    print(f"{task_type} v{variation} ({split}): gold {gold}", file=sys.stderr)
    finally:
        env.close()
        if engine is not None:
            engine.close()
    return scenarios


def textworld() -> List[Dict[str, Any]]:
    module = adapter("textworld")
    scenarios = []
    for split, groups in TEXTWORLD_GAMES.items():
        for options, seeds in groups:
            for seed in seeds:
                env = module.TextWorld()
                reset = {**options, "seed": seed}
                try:
                    obs = env.reset(**reset)
                finally:
                    env.close()
                walkthrough = len(obs.privileged["plan"])
                kind = options["game"]
                scenarios.append({
                    "id": f"textworld-{kind}-{seed}",
                    "split": split,
                    "task": obs.task,
                    "horizon": horizon(walkthrough),
                    "adapter": "textworld",
                    "reset": reset,
                    "task_type": kind,
                    "gold": walkthrough,
                })
                print(f"{kind} seed {seed} ({split}): walkthrough {walkthrough}", file=sys.stderr)
    return scenarios


SCIENCEWORLD_HEADER = """
ScienceWorld scenarios for leap's external environments (issue 20), written by
assets/envs/make_scenarios.py from the real engine (task text; horizon = gold length x 1.5 + 5,
at most 60). Train: the first variations of ScienceWorld's own train split; test: of its test
split. The adapter is assets/envs/scienceworld.py. See README.md beside this file.
"""

TEXTWORLD_HEADER = """
TextWorld scenarios for leap's external environments (issue 20), written by
assets/envs/make_scenarios.py. Each game is made by tw-make from the reset arguments (fixed
seeds) into the user cache when first played; no game file is committed. Horizon = walkthrough
length x 1.5 + 5. The adapter is assets/envs/textworld.py. See README.md beside this file.
"""


def readme(science: List[Dict[str, Any]], text: List[Dict[str, Any]]) -> str:
    def table(scenarios: List[Dict[str, Any]]) -> List[str]:
        rows = ["| task type | train | test | plan length (min-max) |", "|---|---|---|---|"]
        kinds: Dict[str, List[Dict[str, Any]]] = {}
        for s in scenarios:
            kinds.setdefault(s["task_type"], []).append(s)
        for kind, group in kinds.items():
            lengths = [s["gold"] for s in group]
            train = sum(s["split"] == "train" for s in group)
            rows.append(f"| {kind} | {train} | {len(group) - train} | {min(lengths)}-{max(lengths)} |")
        return rows

    lines = [
        "# External scenarios: ScienceWorld and TextWorld",
        "",
        "Scenarios of kind `external`: leap starts the adapter named by `world.server.adapter`",
        "(`assets/envs/<adapter>.py`, an OpenEnv server) and resets it with `world.reset`. The Python",
        "they need comes from `just deps-external` (ScienceWorld also needs Java, which `just deps`",
        "installs).",
        "",
        "## scienceworld.yaml",
        "",
        "[ScienceWorld](https://github.com/allenai/ScienceWorld) (Wang et al., EMNLP 2022; Apache-2.0;",
        "PyPI `scienceworld` 1.2.3, which bundles its Java engine): 30 task types of elementary",
        "science in a simulated house. These scenarios take six types whose gold action sequences are",
        "short, at the `easy` simplification, with up to 8 variations from ScienceWorld's own train split",
        "and 8 from its test split each. The first three types (find-non-living-thing,",
        "lifespan-longest-lived, chemistry-mix-paint-secondary-color) are issue 20's experiment.",
        "",
        *table(science),
        "",
        "## textworld.yaml",
        "",
        "[TextWorld](https://github.com/microsoft/TextWorld) (Cote et al., 2018; MIT; PyPI",
        "`textworld` 1.7.0, which bundles Inform 7): games generated by `tw-make` with fixed seeds.",
        "`tw-simple` is TextWorld's small household quest (dense rewards, detailed goal; the test games",
        "are drawn from its test distribution); `custom` is a two-room world with four objects and a",
        "two-command quest. The games are not committed: the adapter makes each one into",
        "`${XDG_CACHE_HOME:-~/.cache}/leap/textworld/` the first time it is played (seconds).",
        "",
        *table(text),
        "",
        "## Regenerate",
        "",
        "```",
        "just deps-external",
        "$(just --quiet external-python) assets/envs/make_scenarios.py",
        "```",
        "",
        "It resets every scenario through its adapter, so the task text and the horizon (plan length",
        "x 1.5 + 5, at most 60) are the engines' own.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["scienceworld", "textworld"])
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    science = scienceworld() if args.only in (None, "scienceworld") else None
    text = textworld() if args.only in (None, "textworld") else None
    if science is not None:
        write(os.path.join(OUT, "scienceworld.yaml"), SCIENCEWORLD_HEADER, science)
    if text is not None:
        write(os.path.join(OUT, "textworld.yaml"), TEXTWORLD_HEADER, text)
    if science is not None and text is not None:
        with open(os.path.join(OUT, "README.md"), "w") as f:
            f.write(readme(science, text))


if __name__ == "__main__":
    main()
