"""A LangChain retrieval chain on the Salesforce Models API, with feedback.

Settings come from the environment (SALESFORCE_DOMAIN, SALESFORCE_CLIENT_ID,
SALESFORCE_CLIENT_SECRET). To try it offline, start `sfmodels emulator` in another terminal and
paste the export lines it prints.

    python examples/rag_chain.py "How long does express shipping take?"
"""

from __future__ import annotations

import sys

from langchain_core.documents import Document
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_sfmodels import ChatSalesforce, SalesforceEmbeddings, SalesforceFeedbackHandler

DOCUMENTS = [
    "Customers can return any product within 30 days of delivery for a full refund.",
    "Express shipping arrives in one business day when ordered before 2 pm.",
    "Standard shipping takes three to five business days.",
    "Every laptop comes with a two-year limited warranty.",
]


def main(question: str) -> str:
    store = InMemoryVectorStore(SalesforceEmbeddings())
    store.add_documents([Document(page_content=text) for text in DOCUMENTS])
    retriever = store.as_retriever(search_kwargs={"k": 2})
    prompt = ChatPromptTemplate.from_messages([
        ("system", "Answer using only this context:\n{context}"),
        ("human", "{question}"),
    ])
    chain = (
        {"context": retriever | (lambda docs: "\n".join(d.page_content for d in docs)),
         "question": RunnablePassthrough()}
        | prompt
        | ChatSalesforce()  # sfdc_ai__DefaultOpenAIGPT4OmniMini
    )
    feedback = SalesforceFeedbackHandler()
    answer = chain.invoke(question, config={"callbacks": [feedback]})
    print(answer.content)
    print("generation:", answer.response_metadata["generation_id"])
    # The handler remembers which generation the chain run produced.
    print("feedback ids:", feedback.submit("GOOD", text="Helpful answer").feedback_ids)
    return str(answer.content)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "How long does express shipping take?")
