"""The emulator's deterministic "language": tokens, embeddings, replies, structured output, tools.

Everything here is a pure function of its input, so the same request always produces the same
content. Nothing tries to be clever; it tries to be *useful* for demos and tests. Where each
part lives:

- :mod:`.tokens`: token counts from a tiny tokenizer (words and punctuation marks),
  ``max_tokens`` and stop-sequence cuts, and the pieces a stream is sent in;
- :mod:`.words`: content words, stopwords and the other word lists the parts below share;
- :mod:`.embeddings`: hashed bags of words, so texts sharing words are close and unrelated texts
  are nearly orthogonal;
- :mod:`.turns`: a conversation as ``(role, text)`` turns;
- :mod:`.replies`: grounded replies: given a context and a question, the context sentence that
  best answers it, so a RAG pipeline over the emulator answers correctly;
- :mod:`.prompt_values`: numbers, quoted strings, names and phrases found in a prompt;
- :mod:`.structured_output`: JSON valid for the caller's schema, and JSON mode's object,
  filled with values taken from the prompt where possible;
- :mod:`.tool_calls`: which tools to call, in which rounds, with schema-valid arguments.
"""
