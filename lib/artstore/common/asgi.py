"""Small ASGI pieces shared by the services' lean streaming responses."""

from __future__ import annotations

from starlette.types import Receive


async def until_disconnect(receive: Receive) -> None:
    """Return when the client has gone (uvicorn sends ``http.disconnect``); a streaming
    answer watches this in a task so that it stops reading what nobody will get."""
    while (await receive())["type"] != "http.disconnect":
        pass
