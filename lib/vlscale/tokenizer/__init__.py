"""The tokenizer stage: the multilingual SentencePiece model every text tower reads (vlscale.data.tokenizer)."""
