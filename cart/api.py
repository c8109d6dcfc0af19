"""JSON API routes of the cart app (mounted by shopcart/api.py)."""

from ninja import Router

router = Router(tags=["cart"])
