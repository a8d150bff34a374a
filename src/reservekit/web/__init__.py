"""The HTTP adapter: Litestar app, thin controllers, middleware, problem+json errors."""
