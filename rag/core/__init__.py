"""Plain data and knowledge shared by every layer: types, errors, words, choices, statistics."""
