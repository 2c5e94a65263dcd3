"""The shop's tables as SQLAlchemy 2.x declarative models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["STATUSES", "Base", "Customer", "Order", "OrderLine", "Product", "Review"]


class Base(DeclarativeBase):
    """Declarative base shared by every shop model."""


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200))  # unique by construction; lesson 04 adds the index
    city: Mapped[str] = mapped_column(String(60))
    address: Mapped[str] = mapped_column(Text)  # wide columns: why projection matters
    notes: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]

    orders: Mapped[list[Order]] = relationship(back_populates="customer")
    reviews: Mapped[list[Review]] = relationship(back_populates="customer")

    def __repr__(self) -> str:
        return f"Customer(id={self.id}, name={self.name!r})"


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(40))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))  # money: exact decimals, never floats
    description: Mapped[str] = mapped_column(Text)

    reviews: Mapped[list[Review]] = relationship(back_populates="product")

    def __repr__(self) -> str:
        return f"Product(id={self.id}, name={self.name!r})"


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))  # no index yet: lesson 04
    status: Mapped[str] = mapped_column(String(20))  # low selectivity: five values
    created_at: Mapped[datetime]
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    shipping_address: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)

    customer: Mapped[Customer] = relationship(back_populates="orders")
    lines: Mapped[list[OrderLine]] = relationship(back_populates="order")

    def __repr__(self) -> str:
        return f"Order(id={self.id}, customer_id={self.customer_id}, status={self.status!r})"


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Numeric(10, 2))  # money: exact decimals, never floats

    order: Mapped[Order] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()

    def __repr__(self) -> str:
        return f"OrderLine(id={self.id}, order_id={self.order_id}, product_id={self.product_id})"


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    rating: Mapped[int]
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]

    product: Mapped[Product] = relationship(back_populates="reviews")
    customer: Mapped[Customer] = relationship(back_populates="reviews")

    def __repr__(self) -> str:
        return f"Review(id={self.id}, product_id={self.product_id}, rating={self.rating})"


STATUSES = ("delivered", "shipped", "paid", "pending", "cancelled")
