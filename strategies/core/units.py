"""Units of measure, spelled one way, for anything that compares quantities in text."""

from __future__ import annotations

UNITS = {
    unit: canonical
    for canonical, spellings in {
        "mile": "mile miles mi",
        "km": "km kilometre kilometres kilometer kilometers",
        "m": "m metre metres meter meters",
        "cm": "cm centimetre centimetres centimeter centimeters",
        "mm": "mm millimetre millimetres millimeter millimeters",
        "inch": "inch inches",
        "foot": "foot feet ft",
        "yard": "yard yards yd",
        "kg": "kg kilogram kilograms kilo kilos",
        "g": "g gram grams",
        "lb": "lb lbs pound pounds",
        "oz": "oz ounce ounces",
        "celsius": "celsius centigrade °c ºc",
        "fahrenheit": "fahrenheit °f ºf",
        "kelvin": "kelvin kelvins",
        "l": "litre litres liter liters",
        "ml": "ml millilitre millilitres milliliter milliliters",
        "gallon": "gallon gallons",
        "cup": "cup cups",
        "second": "second seconds sec secs",
        "minute": "minute minutes min mins",
        "hour": "hour hours hr hrs",
        "byte": "byte bytes",
        "bit": "bit bits",
        "kb": "kb kilobyte kilobytes",
        "mb": "mb megabyte megabytes",
        "gb": "gb gigabyte gigabytes",
        "tb": "tb terabyte terabytes",
        "usd": "usd dollar dollars",
        "eur": "eur euro euros",
        "gbp": "gbp sterling",
        "jpy": "jpy yen",
        "percent": "percent per cent",
        "km2": "km² km^2",
        "m2": "m² m^2",
        "cm2": "cm² cm^2",
        "h": "h",
        "s": "s",
    }.items()
    for unit in spellings.split()
}
"""Spelling of a unit of measure → one canonical name. Which unit a number carries decides an answer
("12 km" is not "12 miles"), and which is converted into which decides a question ("30 miles to km")."""
