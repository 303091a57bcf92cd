"""The engine's services, one module per thing a request acts on; `engine.services.Gmpflow` composes them."""
