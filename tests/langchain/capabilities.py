"""What each chat model supports, declared once for both standard suites."""

from __future__ import annotations

from langchain_sfmodels import ChatDatabricks, ChatSalesforce


class SalesforceChat:
    """Its chat takes text only. Tools and structured output go through the prompted protocol
    (the API has no fields for them); JSON mode is its schema-less form."""

    @property
    def chat_model_class(self) -> type[ChatSalesforce]:
        return ChatSalesforce

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True


class DatabricksChat:
    @property
    def chat_model_class(self) -> type[ChatDatabricks]:
        return ChatDatabricks

    @property
    def supports_json_mode(self) -> bool:
        return True
