"""Everything a view of the shop needs, in one import: what lessons write their endpoints with.

    from helpers.shop.kit import Blueprint, get_session, int_arg, select, Order, ...

The files the "improve the app" checks save under data/my_app/ start with `from helpers.shop.kit import *`,
so the views you write in a lesson run unchanged when the capstone assembles your app from them.
"""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, abort, jsonify, request, url_for
from sqlalchemy import and_, case, delete, desc, func, insert, literal, or_, select, text, tuple_, update
from sqlalchemy.orm import Bundle, contains_eager, joinedload, load_only, raiseload, selectinload

from .caching import cache
from .db import get_engine, get_session
from .models import STATUSES, Customer, Order, OrderLine, Product, Review
from .orders import order_json, order_request, placed_at, unknown_customer, unknown_product
from .params import ID, MAX_ID, amount_arg, choice_arg, example, int_arg, number_arg, str_arg
from .queries import NEWEST_FIRST, report_window, search_terms

__all__ = [
    "ID",
    "MAX_ID",
    "NEWEST_FIRST",
    "STATUSES",
    "Blueprint",
    "Bundle",
    "Customer",
    "Decimal",
    "Order",
    "OrderLine",
    "Product",
    "Review",
    "abort",
    "amount_arg",
    "and_",
    "cache",
    "case",
    "choice_arg",
    "contains_eager",
    "delete",
    "desc",
    "example",
    "func",
    "get_engine",
    "get_session",
    "insert",
    "int_arg",
    "joinedload",
    "jsonify",
    "literal",
    "load_only",
    "number_arg",
    "or_",
    "order_json",
    "order_request",
    "placed_at",
    "raiseload",
    "report_window",
    "request",
    "search_terms",
    "select",
    "selectinload",
    "str_arg",
    "text",
    "tuple_",
    "unknown_customer",
    "unknown_product",
    "update",
    "url_for",
]
