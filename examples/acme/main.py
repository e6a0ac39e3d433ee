"""The FastAPI app: its own routes, and Redo's receiver mounted at /webhooks/redo."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException

from .orders import ledger
from .webhooks import hooks

app = FastAPI(title="acme", lifespan=hooks.lifespan)
app.mount("/webhooks/redo", hooks.asgi())


@app.get("/refunds/{return_id}")
async def refund(return_id: str) -> dict[str, str]:
    """The refund recorded for a return."""
    if return_id not in ledger.refunds:
        raise HTTPException(status_code=404, detail="no refund recorded")
    return {"return": return_id, "refund": str(ledger.refunds[return_id])}
