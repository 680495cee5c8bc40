"""WebShop (Yao et al. 2022, Princeton NLP) as an OpenEnv server in leap's convention.

UNTESTED HERE: WebShop, its product data and its search index could not be installed where this
adapter was written. It follows WebShop's own code (web_agent_site/envs/web_agent_text_env.py:
WebAgentTextEnv, SimServer; engine/goal.py) and may need small fixes on first use.

    LEAP_WEBSHOP_DIR=~/WebShop python webshop.py --port 8125

WebShop is not a package on an index: it runs from its checkout (after its setup.sh has fetched
the data and built the index). `LEAP_WEBSHOP_DIR` names that checkout unless `web_agent_site` is
importable already.

Reset arguments: `goal` (the index of a goal among the server's goals; with human goals, 0-499
are WebShop's test split and 500-1499 its dev split), `num_products` (None: all; else 100, 1000
or 100000, the indexes WebShop builds), `human_goals` (default true: the human-written
instructions), `observation_mode` ("text", WebShop's " [SEP] "-joined page, or "text_rich").

The student reads the page and the instruction. On a page with a search bar the action is free
text (`search[...]`), so `admissible_actions` is null there; elsewhere it lists `click[...]` for
every clickable. Only the teacher sees the goal product: its ASIN, name, attributes, options,
price and the price limit. The expert searches for the goal product by name, clicks its ASIN
(turning pages when it is not on the first), clicks the goal's options and buys; it re-plans from
the page it is on, so it recovers from a deviation.

One product catalogue (GBs with the full data) is shared by all sessions, and every call into
WebShop holds one lock: its simulated server keeps shared state and was not written for threads.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import State

from leap_openenv import LeapAction, LeapObservation, expert, privileged, serve

_lock = threading.RLock()
_servers: Dict[Tuple[Any, bool], Any] = {}
_sessions = itertools.count()
# Pages of search results the expert turns before it gives up on finding the goal product.
MAX_PAGES = 5


def _webshop() -> Any:
    try:
        from web_agent_site.envs import web_agent_text_env
    except ImportError:
        root = os.environ.get("LEAP_WEBSHOP_DIR")
        if not root:
            raise RuntimeError(
                "WebShop is not importable: set LEAP_WEBSHOP_DIR to a WebShop checkout "
                "(with its data and search index set up)"
            )
        sys.path.insert(0, os.path.abspath(os.path.expanduser(root)))
        from web_agent_site.envs import web_agent_text_env
    return web_agent_text_env


def _server(module: Any, num_products: Optional[int], human_goals: bool) -> Any:
    key = (num_products, human_goals)
    if key not in _servers:
        _servers[key] = module.SimServer(
            "http://127.0.0.1:3000",
            module.DEFAULT_FILE_PATH,
            None,
            -1,
            num_products,
            human_goals,
            False,
        )
    return _servers[key]


def _options(goal: Dict[str, Any]) -> List[str]:
    options = goal.get("goal_options") or []
    if isinstance(options, dict):
        return [str(value) for value in options.values()]
    return [str(value) for value in options]


class WebShop(Environment):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        super().__init__()
        self._env: Optional[Any] = None
        self._state = State()
        self._done = True
        self._reward = 0.0
        self._prefix = f"leap{os.getpid()}x{next(_sessions)}x"
        self._pages_turned = 0
        self._goal = -1

    @property
    def state(self) -> State:
        return self._state

    def reset(
        self,
        goal: Optional[int] = None,
        num_products: Optional[int] = None,
        human_goals: bool = True,
        observation_mode: str = "text",
        seed: Optional[int] = None,
        episode_id: Optional[str] = None,
        **kwargs: Any,
    ) -> LeapObservation:
        if kwargs:
            raise ValueError(
                f"unknown reset argument(s) {sorted(kwargs)}: WebShop takes goal, num_products, "
                "human_goals, observation_mode, seed"
            )
        if goal is None:
            raise ValueError("reset needs `goal` (the index of a WebShop goal)")
        with _lock:
            module = _webshop()
            server = _server(module, num_products, bool(human_goals))
            if not 0 <= int(goal) < len(server.goals):
                raise ValueError(f"goal {goal} is not among the {len(server.goals)} goals")
            if self._env is None or self._env.observation_mode != observation_mode:
                self._env = module.WebAgentTextEnv(
                    observation_mode=observation_mode, server=server, session_prefix=self._prefix
                )
            text, _ = self._env.reset(session=int(goal))
            self._done = False
            self._reward = 0.0
            self._pages_turned = 0
            self._goal = int(goal)
            self._state = State(episode_id=episode_id, step_count=0)
            return self._observe(text)

    def step(self, action: LeapAction, timeout_s: Optional[float] = None, **kwargs: Any) -> LeapObservation:
        if self._env is None:
            raise RuntimeError("no episode: reset first")
        if self._done:
            raise RuntimeError("the episode is over: reset to start another")
        command = action.command.strip()
        with _lock:
            if command.lower().startswith("click[next"):
                self._pages_turned += 1
            elif command.lower().startswith("search["):
                self._pages_turned = 0
            text, reward, done, _ = self._env.step(command)
            self._state.step_count += 1
            self._done = bool(done)
            if done:
                self._reward = float(reward or 0.0)
            return self._observe(text)

    def _session(self) -> Dict[str, Any]:
        return self._env.server.user_sessions[self._env.session]

    def _expert(self, available: Dict[str, Any]) -> Tuple[Optional[str], str]:
        session = self._session()
        goal = session["goal"]
        asin = str(goal["asin"]).lower()
        clickables = available["clickables"]
        url = self._env.state["url"] or ""
        if available["has_search_bar"]:
            return f"search[{str(goal['name']).lower()}]", "search for the goal product by name"
        if "item_sub_page" in url:
            return "click[< prev]", "back to the goal product's page"
        if "item_page" in url:
            if str(session.get("asin") or "").lower() != asin:
                return "click[< prev]", "this is not the goal product"
            chosen = set(str(v).lower() for v in session.get("options", {}).values())
            for option in _options(goal):
                # WebShop lower-cases a clicked name, so an option is clickable only so.
                if option.lower() not in chosen and option.lower() in clickables:
                    return f"click[{option.lower()}]", "an option the goal asks for"
            return "click[buy now]", "the goal product with the goal's options"
        if asin in clickables:
            return f"click[{asin}]", "the goal product"
        if "next >" in clickables and self._pages_turned < MAX_PAGES:
            return "click[next >]", "the goal product is not on this page"
        return "click[back to search]", "the goal product was not found; search again"

    def _observe(self, text: str) -> LeapObservation:
        session = self._session()
        goal = session["goal"]
        price = self._env.server.product_prices.get(goal["asin"])
        options = _options(goal)
        facts = {
            "goal ASIN": str(goal["asin"]),
            "goal product": str(goal.get("name", "")),
            "goal attributes": ", ".join(str(a) for a in goal.get("attributes", [])),
            "goal options": ", ".join(options),
            "goal price": "" if price is None else f"{price:.2f}",
            "price limit": f"{float(goal.get('price_upper', 0)):.2f}",
            "category": str(goal.get("category", "")),
            "query": str(goal.get("query", "")),
        }
        lines = [f"{name}: {value}" for name, value in facts.items()]
        if self._done:
            available = {"has_search_bar": False, "clickables": []}
            proposal = None
        else:
            available = self._env.get_available_actions()
            action, reason = self._expert(available)
            proposal = expert(action, reason)
        admissible = None
        if not self._done and not available["has_search_bar"]:
            admissible = sorted({f"click[{name}]" for name in available["clickables"]})
        return LeapObservation(
            text=text,
            task=str(self._env.instruction_text),
            admissible_actions=admissible,
            privileged=privileged("\n".join(lines), facts, None),
            expert_action=proposal,
            won=self._done and self._reward >= 1.0,
            info={"goal": self._goal, "url": self._env.state["url"]},
            reward=self._reward,
            done=self._done,
        )

    def close(self) -> None:
        self._env = None


if __name__ == "__main__":
    serve(WebShop, "WebShop as an OpenEnv server in leap's convention")
