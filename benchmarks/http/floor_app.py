"""The HTTP floor: a trivial FastAPI app (one async route, a tiny JSON), served like address-finder."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}
