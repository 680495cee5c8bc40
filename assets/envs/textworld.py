"""TextWorld (Cote et al. 2018, MIT) as an OpenEnv server in leap's convention.

    python textworld.py --port 8124        # leap starts it so, stdin a pipe it holds open

Reset arguments (a scenario's `world.reset`): either `path` (a game file already made: .z8, .ulx,
with its .json beside it) or `game` (a `tw-make` challenge: "tw-simple", "tw-coin_collector",
"tw-treasure_hunter", "tw-cooking", or "custom"; default "tw-simple") with `seed` (required) and
`tw-make`'s options for that challenge as keys with underscores (`rewards`, `goal`, `level`,
`world_size`, `nb_objects`, `quest_length`, ...; true turns a flag on). tw-simple defaults to
`rewards: dense, goal: detailed`.

A game is generated once into `${XDG_CACHE_HOME:-~/.cache}/leap/textworld/<name>.z8` (its .json
beside it), the name spelling out the arguments. Generation takes seconds and is safe when several
sessions ask for the same game at once: a lock file serialises them and each game is written in a
temporary folder and renamed into place, its .z8 last.

What the student reads: the room description (not TextWorld's banner) and the engine's feedback,
the objective as the task, the engine's admissible commands. What only the teacher sees: the
winning walkthrough from the current state (`policy_commands`, which TextWorld recomputes after
every action, so the expert re-plans after a deviation) and the game's facts.

Sessions run concurrently, but TextWorld is not thread-safe, so their calls into it take turns.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from typing import Any, Dict, List, Optional

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import State

from leap_openenv import LeapAction, LeapObservation, engine_module, expert, privileged, serve

textworld = engine_module("textworld")

# TextWorld is not thread-safe (its parsers of game logic share state: two sessions loading games
# at once fail with grammar errors), so every call into it holds this lock.
_engine_lock = threading.Lock()
# Keyed by challenge: the options tw-make requires, with leap's defaults.
REQUIRED = {"tw-simple": {"rewards": "dense", "goal": "detailed"}}
CHALLENGES = ("custom", "tw-simple", "tw-coin_collector", "tw-treasure_hunter", "tw-cooking")
# The prompt line the engine appends to its feedback (">  -= Bedroom =-0/2").
PROMPT_LINE = re.compile(r"\n>[^\n]*$")
# What the engine says after the end ("Would you like to RESTART, RESTORE ... UNDO ...?"):
# an offer the player cannot take here.
AFTER_THE_END = re.compile(r"\s*Would you like to RESTART[^\n]*$")
# A fact's variable types ("at(apple: f, kitchen: r)"): noise to a reader.
FACT_TYPE = re.compile(r": [A-Za-z_]+\b")


def _cache_dir() -> str:
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache):
        cache = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "leap", "textworld")


def _tw_make() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "tw-make")
    found = beside if os.access(beside, os.X_OK) else shutil.which("tw-make")
    if not found:
        raise RuntimeError("tw-make not found (install textworld: `just deps-external`)")
    return found


def game_spec(game: str, seed: Any, options: Dict[str, Any]) -> tuple[str, List[str]]:
    """The cache name and the tw-make arguments of a game."""
    if game not in CHALLENGES:
        raise ValueError(f"unknown TextWorld game {game!r}; tw-make makes {list(CHALLENGES)}")
    if seed is None:
        raise ValueError("reset needs `seed` to generate a TextWorld game (or `path` to a game file)")
    options = {**REQUIRED.get(game, {}), **options}
    args = [game, "--seed", str(int(seed))]
    parts = [game, f"seed{int(seed)}"]
    for key in sorted(options):
        value = options[key]
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
            parts.append(key)
        else:
            args += [flag, str(value)]
            parts.append(f"{key}-{value}")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", "_".join(parts))
    return name, args


def make_game(game: str, seed: Any, options: Dict[str, Any]) -> str:
    """The path of the game's .z8, generated with tw-make if the cache lacks it."""
    name, args = game_spec(game, seed, options)
    folder = _cache_dir()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name + ".z8")
    if os.path.exists(path):
        return path
    with open(os.path.join(folder, name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path):
            return path
        with tempfile.TemporaryDirectory(dir=folder, prefix=".make-") as work:
            made = os.path.join(work, name + ".z8")
            run = subprocess.run(
                [_tw_make(), *args, "--output", made, "--silent", "-f"],
                capture_output=True,
                text=True,
                cwd=work,
            )
            if run.returncode != 0 or not os.path.exists(made):
                raise RuntimeError(
                    f"tw-make {' '.join(args)} failed ({run.returncode}): "
                    f"{(run.stderr or run.stdout).strip()[-2000:]}"
                )
            os.replace(os.path.join(work, name + ".json"), os.path.join(folder, name + ".json"))
            os.replace(made, path)
    return path


def _feedback(text: str) -> str:
    return _tidy(AFTER_THE_END.sub("", PROMPT_LINE.sub("", text or "")))


def _tidy(text: str) -> str:
    """The text without TextWorld's runs of blank lines (each costs the student tokens)."""
    return re.sub(r"\n\s*\n(\s*\n)+", "\n\n", text).strip()


class TextWorld(Environment):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        super().__init__()
        self._env: Optional[Any] = None
        self._state = State()
        self._done = True
        self._spec: Dict[str, Any] = {}

    @property
    def state(self) -> State:
        return self._state

    def reset(
        self,
        game: str = "tw-simple",
        seed: Optional[int] = None,
        path: Optional[str] = None,
        episode_id: Optional[str] = None,
        **options: Any,
    ) -> LeapObservation:
        if path is None:
            path = make_game(game, seed, options)
            self._spec = {"game": game, "seed": seed, **options}
        else:
            if options:
                raise ValueError(f"tw-make options {sorted(options)} need `game`, not `path`")
            self._spec = {"path": path}
        with _engine_lock:
            return self._start(path, episode_id)

    def _start(self, path: str, episode_id: Optional[str]) -> LeapObservation:
        self._close_env()
        infos = textworld.EnvInfos(
            admissible_commands=True,
            policy_commands=True,
            facts=True,
            objective=True,
            max_score=True,
            score=True,
            moves=True,
            won=True,
            lost=True,
            description=True,
            feedback=True,
        )
        self._env = textworld.start(path, request_infos=infos)
        state = self._env.reset()
        self._done = False
        self._state = State(episode_id=episode_id, step_count=0)
        # The first feedback is the banner, the objective and the room; the room alone is the text.
        return self._observe(state, _tidy(state.description or _feedback(state.feedback)))

    def step(self, action: LeapAction, timeout_s: Optional[float] = None, **kwargs: Any) -> LeapObservation:
        if self._env is None:
            raise RuntimeError("no episode: reset first")
        if self._done:
            raise RuntimeError("the episode is over: reset to start another")
        with _engine_lock:
            state, _, done = self._env.step(action.command.strip())
            self._state.step_count += 1
            self._done = bool(done)
            return self._observe(state, _feedback(state.feedback))

    def _observe(self, state: Any, text: str) -> LeapObservation:
        plan = list(state.policy_commands or [])
        max_score = state.max_score or 0
        score = state.score or 0
        facts_list = [FACT_TYPE.sub("", str(fact)) for fact in state.facts or []]
        facts = {"walkthrough": "; ".join(plan), "max score": str(max_score)}
        lines = [f"Walkthrough from here ({len(plan)} commands): " + "; ".join(plan)]
        lines.append("World facts: " + "; ".join(facts_list))
        named = privileged("\n".join(lines), facts, plan)
        named["facts"] += [{"name": "fact", "value": fact} for fact in facts_list]
        won = bool(state.won)
        return LeapObservation(
            text=text,
            task=(state.objective or "").strip(),
            admissible_actions=sorted(set(state.admissible_commands or [])),
            privileged=named,
            expert_action=None if self._done or not plan else expert(plan[0]),
            won=won,
            info={
                "score": score,
                "max_score": max_score,
                "moves": state.moves,
                "lost": bool(state.lost),
                **self._spec,
            },
            reward=(score / max_score) if max_score else float(won),
            done=self._done,
        )

    def _close_env(self) -> None:
        env, self._env = self._env, None
        if env is not None:
            env.close()

    def close(self) -> None:
        with _engine_lock:
            self._close_env()


if __name__ == "__main__":
    serve(TextWorld, "TextWorld as an OpenEnv server in leap's convention")
