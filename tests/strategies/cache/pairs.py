"""Prompt pairs for the semantic layer: paraphrases (same answer: should hit) and near-misses (a different
answer: must never hit)."""

from __future__ import annotations

PARAPHRASES = [
    ("What is the capital of France?", "What's the capital of France?"),
    ("What is the capital of France?", "Tell me the capital city of France."),
    ("How do I reverse a list in Python?", "How can I reverse a list in Python?"),
    ("Explain how TCP congestion control works.", "Can you explain how TCP congestion control works?"),
    ("What is the boiling point of water at sea level?", "At sea level, what is the boiling point of water?"),
    ("Summarise the causes of World War I.", "Summarize the causes of World War I."),
    ("Who wrote Pride and Prejudice?", "Who is the author of Pride and Prejudice?"),
    ("Is 97 a prime number?", "Is 97 prime?"),
    ("What does HTTP status 404 mean?", "What is the meaning of HTTP status 404?"),
    ("Translate 'good morning' into Spanish.", "Please translate 'good morning' into Spanish."),
    ("What are the health benefits of green tea?", "What health benefits does green tea have?"),
    ("How many bones are in the adult human body?", "How many bones does an adult human body have?"),
    ("Write a haiku about autumn leaves.", "Please write a haiku about autumn leaves."),
    (
        "What is the difference between a list and a tuple in Python?",
        "What's the difference between a tuple and a list in Python?",
    ),
    ("Give me three tips for better sleep.", "Give me 3 tips for better sleep."),
    ("What year did the Berlin Wall fall?", "In what year did the Berlin Wall fall?"),
    ("How does photosynthesis work?", "How does photosynthesis work exactly?"),
    ("Define the term 'opportunity cost'.", "Please define the term 'opportunity cost'."),
    ("What is the time complexity of binary search?", "What's the time complexity of a binary search?"),
    ("Recommend a good book on Stoicism.", "Can you recommend a good book on Stoicism?"),
    ("Convert 100 Fahrenheit to Celsius.", "Convert 100 Fahrenheit into Celsius."),
    ("Why is the sky blue?", "Why is the sky blue during the day?"),
]

NEAR_MISSES = [
    ("Is 91 prime?", "Is 97 prime?"),
    ("What is 17 times 23?", "What is 17 times 24?"),
    ("What is the capital of France?", "What is the capital of Spain?"),
    ("Who wrote Pride and Prejudice?", "Who wrote Sense and Sensibility?"),
    ("What year did the Berlin Wall fall?", "What year did the Berlin Wall go up?"),
    ("Convert 100 Fahrenheit to Celsius.", "Convert 100 Celsius to Fahrenheit."),
    ("Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?"),
    ("How do I reverse a list in Python?", "How do I reverse a list in JavaScript?"),
    ("What does HTTP status 404 mean?", "What does HTTP status 403 mean?"),
    ("Translate 'good morning' into Spanish.", "Translate 'good night' into Spanish."),
    ("What is the population of Tokyo?", "What is the population of Osaka?"),
    ("Give me three tips for better sleep.", "Give me five tips for better sleep."),
    ("Sort the numbers 5, 3, 9 in ascending order.", "Sort the numbers 5, 3, 8 in ascending order."),
    ("What is the square root of 144?", "What is the square root of 169?"),
    ("Explain the `map` function in Python.", "Explain the `filter` function in Python."),
    ("What is the boiling point of water at sea level?", "What is the freezing point of water at sea level?"),
    (
        "Who was the first president of the United States?",
        "Who was the second president of the United States?",
    ),
    ("How many days are in February 2024?", "How many days are in February 2023?"),
    ("What is the time complexity of binary search?", "What is the time complexity of linear search?"),
    ("Does aspirin interact with ibuprofen?", "Does aspirin interact with warfarin?"),
    ("Write a haiku about autumn leaves.", "Write a limerick about autumn leaves."),
    ("What does the error KeyError mean in Python?", "What does the error ValueError mean in Python?"),
    ("Convert 5 kilograms to pounds.", "Convert 5 pounds to kilograms."),
    ("Is it legal to record a phone call?", "Is it unlawful to record a phone call?"),
]
