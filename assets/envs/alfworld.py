"""ALFWorld (Shridhar et al. 2021, MIT), text version, as an OpenEnv server in leap's convention.

UNTESTED HERE: ALFWorld's game data (`alfworld-download`) could not be fetched where this adapter
was written. It follows ALFWorld's README and source (alfworld/agents/environment/alfred_tw_env.py:
AlfredTWEnv, AlfredDemangler, AlfredInfos, AlfredExpert; scripts/alfworld-play-tw) and may need
small fixes on first use.

    python alfworld.py --port 8127        # after `pip install alfworld` and `alfworld-download`

Reset arguments: either `game` (a `game.tw-pddl` file) or `split` ("train", "eval_in_distribution"
or "eval_out_of_distribution", AlfredTWEnv's names) with `index` (the game's index among that
split's solvable games, sorted by path so an index always names the same game); `config` (an
ALFWorld config YAML; default: `$ALFWORLD_CONFIG`, else the data paths ALFWorld's base config
uses under `$ALFWORLD_DATA`); `task_types` (AlfredTWEnv's ids 1-6; default all); `expert`
("handcoded", ALFWorld's fast hand-written expert, the default, or "planner", its slow PDDL
planner, which also gives the whole plan).

The student reads the room and the feedback, the goal ("Your task is to: ...") as the task, and
the engine's admissible commands. Only the teacher sees the expert's plan and the object locations
and states (the PDDL facts: what is in or on what, what is held, open, clean, hot, cool...).
Both experts re-plan from the current state, so they recover from a deviation. The hand-coded
expert knows only its next action (`plan` is null) and, as in ALFWorld, proposes "look" first.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any, Dict, List, Optional

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import State

from leap_openenv import LeapAction, LeapObservation, engine_module, privileged, serve
from leap_openenv import expert as proposal

# The facts that say where objects are and what state they are in (alfworld/data/alfred.pddl).
LOCATION_FACTS = {
    "atlocation",
    "inreceptacle",
    "inreceptacleobject",
    "holds",
    "opened",
    "isclean",
    "ishot",
    "iscool",
    "istoggled",
    "issliced",
}
TASK_LINE = re.compile(r"Your task is to:\s*(.*)", re.IGNORECASE)
WELCOME = re.compile(r"^\s*-= Welcome to TextWorld, ALFRED! =-\s*")
_games: Dict[tuple, List[str]] = {}


def _config(path: Optional[str]) -> Dict[str, Any]:
    import yaml

    path = path or os.environ.get("ALFWORLD_CONFIG")
    if path:
        with open(os.path.expanduser(path)) as f:
            return yaml.safe_load(f)
    return {
        "dataset": {
            "data_path": "$ALFWORLD_DATA/json_2.1.1/train",
            "eval_id_data_path": "$ALFWORLD_DATA/json_2.1.1/valid_seen",
            "eval_ood_data_path": "$ALFWORLD_DATA/json_2.1.1/valid_unseen",
            "num_train_games": -1,
            "num_eval_games": -1,
        },
        "env": {"task_types": [1, 2, 3, 4, 5, 6], "goal_desc_human_anns_prob": 0.0},
    }


def _game_files(split: str, config: Optional[str], task_types: Optional[List[int]]) -> List[str]:
    key = (split, config, tuple(task_types or ()))
    if key not in _games:
        engine_module("alfworld.info")  # sets $ALFWORLD_DATA to its default when unset
        tw_env = engine_module("alfworld.agents.environment.alfred_tw_env")
        settings = _config(config)
        if task_types:
            settings["env"]["task_types"] = list(task_types)
        games = tw_env.AlfredTWEnv(settings, train_eval=split).game_files
        _games[key] = sorted(games)
    return _games[key]


def _facts(state: Any) -> List[str]:
    kept = []
    for fact in state.get("facts") or []:
        if str(getattr(fact, "name", "")).lower() in LOCATION_FACTS:
            kept.append(re.sub(r": [A-Za-z_]+\b", "", str(fact)))
    return sorted(kept)


class ALFWorld(Environment):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        super().__init__()
        self._env: Optional[Any] = None
        self._state = State()
        self._done = True
        self._task = ""
        self._game = ""
        self._planner = False

    @property
    def state(self) -> State:
        return self._state

    def reset(
        self,
        game: Optional[str] = None,
        split: str = "eval_out_of_distribution",
        index: Optional[int] = None,
        config: Optional[str] = None,
        task_types: Optional[List[int]] = None,
        expert: str = "handcoded",
        seed: Optional[int] = None,
        episode_id: Optional[str] = None,
        **kwargs: Any,
    ) -> LeapObservation:
        if kwargs:
            raise ValueError(
                f"unknown reset argument(s) {sorted(kwargs)}: ALFWorld takes game, split, index, "
                "config, task_types, expert, seed"
            )
        textworld = engine_module("textworld")
        tw_env = engine_module("alfworld.agents.environment.alfred_tw_env")
        if game is None:
            if index is None:
                raise ValueError("reset needs `game` (a game.tw-pddl file) or `split` and `index`")
            games = _game_files(split, config, task_types)
            if not 0 <= int(index) < len(games):
                raise ValueError(f"split {split!r} has {len(games)} games, not index {index}")
            game = games[int(index)]
        elif os.path.isdir(game):
            found = glob.glob(os.path.join(game, "game.tw-pddl"))
            if not found:
                raise ValueError(f"no game.tw-pddl in {game}")
            game = found[0]
        if expert not in ("handcoded", "planner"):
            raise ValueError(f"expert is \"handcoded\" or \"planner\", not {expert!r}")
        self._planner = expert == "planner"
        kind = tw_env.AlfredExpertType.PLANNER if self._planner else tw_env.AlfredExpertType.HANDCODED
        infos = textworld.EnvInfos(
            won=True,
            admissible_commands=True,
            facts=True,
            policy_commands=self._planner,
            extras=["gamefile", "expert_plan"],
        )
        self.close()
        self._env = textworld.start(
            game,
            request_infos=infos,
            wrappers=[tw_env.AlfredDemangler(), tw_env.AlfredInfos, tw_env.AlfredExpert(expert_type=kind)],
        )
        state = self._env.reset()
        feedback = str(state.get("feedback") or "")
        found = TASK_LINE.search(feedback)
        self._task = found.group(1).strip() if found else ""
        self._game = game
        self._done = False
        self._state = State(episode_id=episode_id, step_count=0)
        text = WELCOME.sub("", TASK_LINE.sub("", feedback)).strip()
        return self._observe(state, text)

    def step(self, action: LeapAction, timeout_s: Optional[float] = None, **kwargs: Any) -> LeapObservation:
        if self._env is None:
            raise RuntimeError("no episode: reset first")
        if self._done:
            raise RuntimeError("the episode is over: reset to start another")
        state, _, done = self._env.step(action.command.strip())
        self._state.step_count += 1
        self._done = bool(done)
        return self._observe(state, str(state.get("feedback") or "").strip())

    def _observe(self, state: Any, text: str) -> LeapObservation:
        plan = [str(a) for a in (state.get("extra.expert_plan") or [])]
        locations = _facts(state)
        facts = {"expert plan": "; ".join(plan), "game": self._game}
        lines = [
            ("Planner's plan from here: " if self._planner else "Expert's next action: ") + "; ".join(plan),
            "Objects and their states: " + "; ".join(locations),
        ]
        named = privileged("\n".join(lines), facts, plan if self._planner else None)
        named["facts"] += [{"name": "object", "value": fact} for fact in locations]
        won = bool(state.get("won"))
        return LeapObservation(
            text=text,
            task=self._task,
            admissible_actions=sorted(set(state.get("admissible_commands") or [])),
            privileged=named,
            expert_action=None if self._done or not plan else proposal(plan[0]),
            won=won,
            info={"game": self._game},
            reward=1.0 if won else 0.0,
            done=self._done,
        )

    def close(self) -> None:
        env, self._env = self._env, None
        if env is not None:
            env.close()


if __name__ == "__main__":
    serve(ALFWorld, "ALFWorld (text) as an OpenEnv server in leap's convention")
