"""Scenario 2: per-call overhead. 500 sequential invoke calls at zero emulator latency.

Ours vs databricks-langchain's ChatDatabricks, plus the core SalesforceClient.chat alone.
Target: no slower than the peer. Reports microseconds per call (median).

    python benchmarks/per_call.py [--calls 500]
"""

from __future__ import annotations

import argparse
from typing import Any

from _common import LLAMA, SF_CHAT, emulator, median_us, peer, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    with emulator() as emu:
        from langchain_sfmodels import ChatDatabricks, ChatSalesforce
        from sfmodels_core import DatabricksClient, SalesforceClient

        creds = {"host": emu.databricks_host, "api_key": emu.databricks_token}
        sf_creds = {"api_key": emu.mint_salesforce_token(), "api_base": emu.salesforce_api_base}
        ours = ChatDatabricks(endpoint=LLAMA, **creds)
        sf_chat = ChatSalesforce(**sf_creds)
        core_dbx = DatabricksClient(env={}, **creds)
        core_sf = SalesforceClient(env={}, **sf_creds)
        msgs = [{"role": "user", "content": "Hello there"}]

        def peer_chat() -> Any:
            from databricks_langchain import ChatDatabricks as Theirs
            return Theirs(endpoint=LLAMA)

        theirs = peer(peer_chat)
        cases: list[tuple[str, Any]] = [
            ("sfmodels_core DatabricksClient.chat", lambda: core_dbx.chat(LLAMA, msgs)),
            ("sfmodels_core SalesforceClient.chat", lambda: core_sf.chat(SF_CHAT, msgs)),
            ("langchain_sfmodels ChatDatabricks.invoke", lambda: ours.invoke("Hello there")),
            ("langchain_sfmodels ChatSalesforce.invoke", lambda: sf_chat.invoke("Hello there")),
            ("databricks_langchain ChatDatabricks.invoke",
             (lambda: theirs.invoke("Hello there")) if theirs else None),
        ]
        rows = []
        for name, call in cases:
            if call is None:
                rows.append((name, None))
                continue
            for _ in range(20):  # warm up connections and tokens
                call()
            rows.append((name, median_us(call, args.calls)))
    table(f"Per-call cost: {args.calls} sequential calls, zero latency (median)",
          ("call", "µs per call"), rows)


if __name__ == "__main__":
    main()
