"""The embedded default's scaffolding, which paper scale never runs: the tiny model and its
warm-up (``tiny_model``), the lesion renderer (``lesions``) and the writers of demo data in the
real datasets' layouts (``demo_data``). Core modules (model loading, SFT, GRPO, evaluation)
never import this package; it imports them."""
