"""The answer path: evidence gate -> prompt -> chat model -> grounding -> Answer."""
