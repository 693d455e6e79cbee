"""LlamaIndex components for the Salesforce Models API and Databricks model serving."""
