"""leap's OpenEnv convention, shared by the adapters in this folder.

An adapter wraps an environment as an OpenEnv server (openenv-core) whose observations follow
leap's convention (README, "External environments"; schema: observation.schema.json):

    text                what the player reads after the last action
    task                the task as the student reads it
    admissible_actions  the commands that do something now (None: free text)
    privileged          {"text", "facts": [{"name", "value"}], "plan"}: never shown to the student
    expert_action       {"action", "reason"}: the privileged expert's next action
    won                 the goal holds
    info                anything about the step worth storing with it
    reward              the episode's score so far, in [0, 1]; done: the episode is over

The action is {"command": "..."}. `serve` runs the server on 127.0.0.1 and exits when its
standard input closes (leap holds it open), so a server never outlives the leap that started it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
from typing import Any, Callable, Dict, List, Optional

from openenv.core.env_server.http_server import create_fastapi_app
from openenv.core.env_server.types import Action, Observation
from pydantic import Field


class LeapAction(Action):
    """One command of the player, as text."""

    command: str = Field(description="the player's action, as text")


class LeapObservation(Observation):
    """What the player reads, and what only the teacher may see."""

    text: str = Field(description="what the player reads after the last action")
    task: str = Field(description="the task as the student reads it")
    admissible_actions: Optional[List[str]] = None
    privileged: Optional[Dict[str, Any]] = None
    expert_action: Optional[Dict[str, Any]] = None
    won: Optional[bool] = None
    info: Optional[Dict[str, Any]] = None


def privileged(text: str, facts: Dict[str, str], plan: Optional[List[str]] = None) -> Dict[str, Any]:
    """The `privileged` field: its text, its facts as (name, value) pairs, the expert's plan."""
    return {
        "text": text,
        "facts": [{"name": name, "value": value} for name, value in facts.items()],
        "plan": plan,
    }


def expert(action: Optional[str], reason: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The `expert_action` field (None when the expert has nothing to do)."""
    if action is None:
        return None
    return {"action": action, "reason": reason}


def engine_module(name: str) -> Any:
    """Imports the installed package `name` that an adapter file of the same name (this folder's
    scienceworld.py, textworld.py...) would otherwise shadow, being first on sys.path."""
    here = os.path.dirname(os.path.abspath(__file__))
    saved = sys.path[:]
    sys.path[:] = [p for p in saved if os.path.abspath(p or os.curdir) != here]
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and name.split(".")[0] == error.name.split(".")[0]:
            raise RuntimeError(f"{name} is not installed for {sys.executable}") from error
        raise
    finally:
        sys.path[:] = saved


def _exit_when_stdin_closes() -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except Exception:
        pass
    os._exit(0)


def serve(factory: Callable[[], Any], description: str, max_sessions: int = 64) -> None:
    """Runs the OpenEnv server of `factory` (an openenv Environment class or a callable that
    makes one) on 127.0.0.1:--port, one environment per WebSocket session."""
    import uvicorn

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--max-sessions", type=int, default=max_sessions)
    parser.add_argument(
        "--no-stdin-watch",
        action="store_true",
        help="keep running when standard input closes (started by hand)",
    )
    args = parser.parse_args()
    if not args.no_stdin_watch:
        threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    app = create_fastapi_app(
        factory, LeapAction, LeapObservation, max_concurrent_envs=args.max_sessions
    )
    uvicorn.run(_quiet_disconnects(app), host=args.host, port=args.port, log_level="warning", ws_ping_interval=None)


def _quiet_disconnects(app: Any) -> Any:
    """openenv 0.3.0 closes a WebSocket its client has already closed and lets the error escape,
    which uvicorn logs as a traceback after every episode; a closed peer is no error here."""
    from starlette.websockets import WebSocketDisconnect

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except WebSocketDisconnect:
            if scope.get("type") != "websocket":
                raise

    return wrapped
