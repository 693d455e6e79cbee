#!/usr/bin/env bash
# A virtual environment with sfmodels (editable, with its `all` and `aiohttp` extras) and the existing Databricks
# integrations the benchmarks compare against: databricks-langchain, llama-index-llms-databricks
# and llama-index-embeddings-databricks.
#
#     bash benchmarks/install_peers.sh [VENV]       # default: .venv-peers beside this folder
#     VENV/bin/python benchmarks/bulk_embedding.py
#
# The peers go in with --no-deps, beside the runtime packages they import pinned by hand: their
# declared trees (full mlflow, databricks-connect capping numpy below 2, unitycatalog packages
# capping databricks-sdk, openai and langchain, openai-agents) contradict one another, and pip
# backtracked through them for more than 15 minutes without resolving. None of those trees is
# needed to import and call ChatDatabricks, DatabricksEmbeddings, Databricks or
# DatabricksEmbedding, so `pip check` lists a few missing requirements, and nothing else.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${1:-$ROOT/.venv-peers}
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# 1) sfmodels and the runtime packages the peers import, resolved normally
"$VENV/bin/pip" install -q -e "$ROOT[all,aiohttp]" \
    "langchain-core==1.8.3" "llama-index-core==0.14.25" "openai==2.24.0" \
    "databricks-sdk==0.94.0" "mcp==1.30.0" "mlflow-skinny==3.17.2" "pandas==2.3.3" \
    "tabulate==0.10.0" "deprecation==2.1.0" "unitycatalog-client==0.4.1" \
    "typing-extensions==4.15.0" "cloudpickle==3.1.2"
# 2) the peers and the Databricks and Unity Catalog packages they import, without their trees
"$VENV/bin/pip" install -q --no-deps \
    "databricks-langchain==0.22.0" "databricks-openai==0.18.0" "databricks-ai-bridge==0.22.0" \
    "databricks-mcp==0.9.2" "databricks-ai-search==0.81" "langchain-mcp-adapters==0.3.2" \
    "unitycatalog-ai==0.4.0" "unitycatalog-langchain==0.4.0" "unitycatalog-openai==0.4.0" \
    "llama-index-llms-databricks==0.6.1" "llama-index-llms-openai-like==0.8.1" \
    "llama-index-llms-openai==0.8.3" "llama-index-embeddings-databricks==0.6.0" \
    "llama-index-embeddings-openai==0.6.0"
"$VENV/bin/python" -c "
from databricks_langchain import ChatDatabricks, DatabricksEmbeddings
from llama_index.llms.databricks import Databricks
from llama_index.embeddings.databricks import DatabricksEmbedding
import langchain_sfmodels, llama_index_sfmodels
print('peers ready in $VENV')"
