"""Request pieces several test modules share (importable: conftest puts this directory on sys.path)."""

from __future__ import annotations

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
        },
    },
}
REFUND = {
    "type": "function",
    "function": {
        "name": "issue_refund",
        "description": "Refund an order to the customer",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {
                "order_id": {"type": "string"},
                "amount": {"type": "number", "minimum": 0},
                "reason": {"type": ["string", "null"]},
                "requested_on": {"type": "string", "format": "date"},
                "contact": {"$ref": "#/$defs/contact"},
            },
            "required": ["order_id", "amount", "reason", "requested_on", "contact"],
            "additionalProperties": False,
            "$defs": {
                "contact": {
                    "type": "object",
                    "properties": {"email": {"type": "string", "format": "email"}, "channel": {"enum": ["mail", "phone"]}},
                    "required": ["email", "channel"],
                    "additionalProperties": False,
                }
            },
        },
    },
}
TOOLS = [WEATHER, REFUND]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}


PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def with_image(detail: str = "auto") -> list[dict]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What does this screenshot of the error dialog say?"},
                {"type": "image_url", "image_url": {"url": PNG, "detail": detail}},
            ],
        }
    ]
