"""Hand-written answer pairs for the equivalence set (written for this set).

Structure: KIND -> list of (question, [(a, b, equivalent, note-or-None), ...]).
Labels follow the README rule: equivalent = a careful grader would accept both
as the same final answer to the question; units must match; a hedge that
commits to an answer counts as that answer.
"""

T, F = True, False

NUMBER = [
    (
        "What is 17 × 23?",
        [
            ("391", "17 * 23 = 391", T, None),
            ("391", "The product is 391.", T, None),
            ("**391**", r"\boxed{391}", T, None),
            ("391.0", "391", T, None),
            ("391", "about 390", F, "an approximation is not the exact answer"),
            ("17 × 23 = 391", "17 × 23 = 381", F, None),
            ("391", "3,91", F, "'3,91' reads as 3.91 (decimal comma), not 391"),
            (
                "Let's compute: 17 × 20 = 340 and 17 × 3 = 51, so 340 + 51 = 391.",
                "391",
                T,
                "final value after working",
            ),
            (
                "17 × 20 = 340, 17 × 3 = 51.\nAnswer: 391",
                "Answer: 340",
                F,
                "340 appears in the working of a but is not its answer",
            ),
        ],
    ),
    (
        "How many metres are in a kilometre?",
        [
            ("1,000", "1000", T, None),
            ("1000 m", "There are 1,000 metres in a kilometre.", T, None),
            ("1000", "100", F, None),
        ],
    ),
    (
        "A train travels at 60 km/h for 12 minutes. How far does it go, in km?",
        [
            ("12 km", "12 miles", F, "different units"),
            ("12 km", "12 kilometres", T, None),
            ("60 × 12/60 = 12, so the train goes 12 km.", "12", T, "the question fixes the unit"),
        ],
    ),
    (
        "What is the probability of heads when flipping a fair coin?",
        [
            ("0.5", "1/2", T, None),
            ("50%", "0.5", T, None),
            ("0.5", "0.05", F, None),
            ("1/2", "1/3", F, None),
            ("One half.", "0.50", T, None),
        ],
    ),
    (
        "What is 5 − 12?",
        [
            ("-7", "−7", T, "ASCII hyphen vs Unicode minus sign"),
            ("-7", "7", F, "sign differs"),
            ("The result is negative seven.", "-7", T, None),
            ("5 − 12 = −7", "12 − 5 = 7", F, None),
        ],
    ),
    (
        "Sam has 3 boxes with 14 apples each and eats 5 apples. How many apples are left?",
        [
            ("37", "3 × 14 = 42, and 42 − 5 = 37. Sam has 37 apples left.", T, None),
            ("37", "42", F, "42 is the intermediate total"),
            (
                "There are 42 apples in total; after eating 5, Sam has 37.",
                "Sam has 42 apples.",
                F,
                "same numbers, different roles",
            ),
        ],
    ),
    (
        "What is 15% of 80?",
        [
            ("12", "12.00", T, None),
            ("12", "0.15 × 80 = 12", T, None),
            ("12", "68", F, "68 is what remains, not 15%"),
            ("12%", "12", F, "'12%' is a percentage, not the quantity 12"),
        ],
    ),
    (
        "What is the square root of 144?",
        [
            ("12", "√144 = 12", T, None),
            ("12", "144", F, None),
        ],
    ),
    (
        "How many seconds are in one hour?",
        [
            ("3600", "3,600 seconds", T, None),
            ("3600", "60 × 60 = 3600", T, None),
            ("3600", "360", F, None),
            ("3600 seconds", "3600 minutes", F, "different units"),
        ],
    ),
    (
        "What is 2^10?",
        [
            ("1024", "1,024", T, None),
            ("1024", "2^10 = 1024", T, None),
            ("1024", "1000", F, None),
            ("1024", "about 1000", F, None),
            ("1024", "1.024 × 10^3", T, "scientific notation, same value"),
            ("2^10 = 1024, which is roughly 10^3.", "1024", T, "the aside 'roughly 10^3' is not the answer"),
        ],
    ),
    (
        "A rectangle is 8 cm long and 5 cm wide. What is its area in square centimetres?",
        [
            ("40 cm²", "40 square centimetres", T, None),
            ("40 cm²", "26 cm", F, "26 cm is the perimeter"),
            ("Area = 8 × 5 = 40 cm^2", "40", T, "the question fixes the unit"),
            ("40 cm²", "40 m²", F, "different units"),
        ],
    ),
    (
        "What is 7 + 8 × 2?",
        [
            ("23", "30", F, "30 ignores operator precedence"),
            ("23", "7 + 16 = 23", T, None),
            ("8 × 2 = 16, then 7 + 16 = 23.", "Answer: 16", F, None),
        ],
    ),
    (
        "What is 100 ÷ 8?",
        [
            ("12.5", "12 1/2", T, None),
            ("12.5", "25/2", T, None),
            ("12.5", "12", F, None),
            ("100 / 8 = 12.5", "The answer is 12.50.", T, None),
        ],
    ),
    (
        "Convert 2.5 hours to minutes.",
        [
            ("150 minutes", "150", T, "the question fixes the unit"),
            ("150 minutes", "150 seconds", F, "different units"),
            ("2.5 × 60 = 150", "150 min", T, None),
        ],
    ),
    (
        "What is 0.1 + 0.2 in exact decimal arithmetic?",
        [
            ("0.3", "3/10", T, None),
            ("0.3", "0.03", F, None),
        ],
    ),
    (
        "What is (−3) × (−4)?",
        [
            ("12", "-12", F, "sign differs"),
            ("12", "+12", T, None),
            ("(−3)(−4) = 12", "12", T, None),
        ],
    ),
    (
        "Mia is 4 years older than Leo, who is 9. How old is Mia?",
        [
            ("13", "Mia is 13 years old.", T, None),
            ("13", "9", F, "9 is Leo's age"),
            ("Leo is 9, so Mia is 9 + 4 = 13.", "Mia is 13; Leo is 9.", T, None),
            ("13", "5", F, None),
        ],
    ),
    (
        "How many minutes are in 3 hours?",
        [
            ("180", "one hundred eighty", T, "number written in words"),
            ("180", "1800", F, None),
        ],
    ),
    (
        "What is 1,000 × 1,000?",
        [
            ("1,000,000", "10^6", T, None),
            ("1,000,000", "one million", T, None),
            ("1,000,000", "100,000", F, None),
            ("1e6", "1000000", T, None),
        ],
    ),
    (
        "What is 3/4 expressed as a percentage?",
        [
            ("75%", "75 percent", T, None),
            ("75%", "34%", F, "digits of the fraction, not its value"),
            ("75%", "7.5%", F, None),
        ],
    ),
    (
        "A shirt costs $20 and is discounted by 25%. What is the sale price?",
        [
            ("$15", "15 dollars", T, None),
            ("$15", "$5", F, "$5 is the discount, not the price"),
            ("The discount is $5, so the sale price is $15.", "$15.00", T, None),
            ("$15", "€15", F, "different currency"),
        ],
    ),
    (
        "What is the sum of the interior angles of a triangle, in degrees?",
        [
            ("180", "180°", T, None),
            ("180", "360", F, None),
        ],
    ),
]

YESNO = [
    (
        "Is 91 a prime number?",
        [
            ("No.", "No, 91 is not prime (7 × 13).", T, None),
            ("No", "Yes", F, None),
            ("Nope.", "No", T, None),
            ("It is not.", "No.", T, None),
            ("No, because 91 = 7 × 13.", "Yes, 91 is prime.", F, None),
            ("Yes", "91 is composite.", F, "composite means not prime"),
            ("At first glance it looks prime, but no: 91 = 7 × 13.", "No", T, None),
            ("No", "Not sure, but I think yes.", F, "the hedge commits to yes"),
            (
                "91 is not divisible by 2, 3 or 5, so yes, it is prime.",
                "No.",
                F,
                "'not' appears in the reasoning but the answer is yes",
            ),
        ],
    ),
    (
        "Is 97 a prime number?",
        [
            ("Yes", "Yes, 97 is prime.", T, None),
            (
                "97 is not divisible by 2, 3, 5 or 7, so yes, it's prime.",
                "Yes.",
                T,
                "'not' appears in the reasoning; the answer is yes",
            ),
            ("Yes", "No, 97 is not prime.", F, None),
            ("Yes", "No doubt about it: 97 is prime.", T, "starts with the word 'No' but answers yes"),
            ("Not sure, but yes.", "Yes", T, "hedge that commits to yes"),
            ("Yes", "I don't know.", F, "a non-answer"),
        ],
    ),
    (
        "Is the Earth flat?",
        [
            ("No", "Absolutely not.", T, None),
            ("No", "No, the Earth is an oblate spheroid.", T, None),
            ("No.", "Yes.", F, None),
        ],
    ),
    (
        "Can penguins fly?",
        [
            ("No", "Penguins cannot fly.", T, None),
            ("No", "They can't fly through the air, though they 'fly' underwater.", T, None),
            ("No", "Yes, some species can.", F, None),
            ("Nope, they're flightless.", "No", T, None),
        ],
    ),
    (
        "Does water boil at 100 °C at sea level?",
        [
            ("Yes", "Yes, at 1 atm it boils at 100 °C.", T, None),
            ("Yes", "No, it boils at 90 °C.", F, None),
            ("Correct.", "Yes", T, None),
            ("That's right.", "No", F, None),
        ],
    ),
    (
        "Is 0 an even number?",
        [
            ("Yes", "Yes, 0 is even because it is divisible by 2.", T, None),
            ("Yes", "No, 0 is neither even nor odd.", F, None),
            ("It is even.", "Yes", T, None),
        ],
    ),
    (
        "Does 2 + 2 equal 5?",
        [
            ("No", "No, 2 + 2 = 4.", T, None),
            ("No", "2 + 2 = 4, so no.", T, None),
            ("No", "Yes", F, None),
            ("False.", "No", T, None),
            ("True", "No", F, None),
        ],
    ),
    (
        "Botanically speaking, is a tomato a fruit?",
        [
            ("Yes", "Botanically, yes—it's a berry.", T, None),
            ("Yes", "No, it's a vegetable.", F, None),
            ("Yes, though no chef would call it one.", "Yes", T, "'no' appears in an aside"),
            ("No", "Yes", F, None),
        ],
    ),
    (
        "Is Python a dynamically typed language?",
        [
            ("Yes", "Yes, types are checked at runtime.", T, None),
            ("Yes", "No, it's statically typed.", F, None),
            (
                "Yes. There is no compile-time type check by default.",
                "No",
                F,
                "'no' appears in the explanation of a yes",
            ),
        ],
    ),
    (
        "Is the list [1, 3, 2] sorted in ascending order?",
        [
            ("No", "No, 3 comes before 2.", T, None),
            ("No", "It is not sorted.", T, None),
            ("No", "Yes, it is sorted.", F, None),
            ("Not sorted.", "Sorted.", F, "same word, opposite polarity"),
        ],
    ),
    (
        "Will `print(1/0)` raise an exception in Python 3?",
        [
            ("Yes", "Yes, ZeroDivisionError.", T, None),
            ("Yes", "No, it prints inf.", F, None),
            (
                "It won't print anything; it raises ZeroDivisionError, so yes.",
                "Yes",
                T,
                "negations in the reasoning, answer yes",
            ),
        ],
    ),
    (
        "Is 2023 a leap year?",
        [
            ("No", "No; 2023 is not divisible by 4.", T, None),
            ("No", "Yes", F, None),
            ("2023 isn't divisible by 4, so it's not a leap year.", "No.", T, None),
        ],
    ),
    (
        "Is 2024 a leap year?",
        [
            ("Yes", "2024 is divisible by 4 and not by 100, so yes.", T, None),
            ("Yes", "No, it is not a leap year.", F, None),
            (
                "Yes",
                "It's not a century year, so no exception applies: yes, it is a leap year.",
                T,
                "'not' and 'no' in the reasoning, answer yes",
            ),
        ],
    ),
    (
        "Is sound faster than light?",
        [
            ("No", "No, light is much faster.", T, None),
            ("No", "Yes, sound is faster.", F, None),
            ("No", "Light is faster than sound.", T, "implicit no"),
            ("No", "Sound is faster than light.", F, "implicit yes"),
        ],
    ),
    (
        "Is it safe to mix bleach and ammonia?",
        [
            ("No", "No — it releases toxic chloramine gas.", T, None),
            ("No", "Yes, in small amounts.", F, None),
            ("Never.", "No", T, None),
        ],
    ),
    (
        "Is the Great Wall of China visible from the Moon with the naked eye?",
        [
            ("No", "No, that's a myth.", T, None),
            ("No", "Yes", F, None),
            ("Contrary to popular belief, no.", "No", T, None),
            ("It's often claimed not to be, but yes, it is.", "No", F, "'not' in a clause, answer yes"),
        ],
    ),
    (
        "Is 1 a prime number?",
        [
            ("No", "No; by definition primes are greater than 1.", T, None),
            ("No", "Yes, 1 is prime.", F, None),
            ("Yes", "1 is neither prime nor composite.", F, None),
        ],
    ),
    (
        "Are the strings 'abc' and 'ABC' equal under a case-sensitive comparison?",
        [
            ("No", "They are not equal.", T, None),
            ("No", "Yes, they're equal.", F, None),
            ("Not equal.", "Equal.", F, "same word, opposite polarity"),
        ],
    ),
    (
        "Is a whale a fish?",
        [
            ("No", "No, whales are mammals.", T, None),
            ("No, it's a mammal.", "Yes, it's a fish.", F, None),
            ("Whales are mammals, not fish.", "No", T, "implicit no"),
        ],
    ),
]

LETTER = [
    (
        "Which gas do plants absorb from the air for photosynthesis?\nA) Oxygen\nB) Carbon dioxide\nC) Nitrogen\nD) Helium",
        [
            ("B", "(B)", T, None),
            ("B", "The answer is B.", T, None),
            ("B) Carbon dioxide", "B", T, None),
            ("Answer: B", "Answer: C", F, None),
            ("I think it's b", "B", T, "lower-case letter in a hedge that commits"),
            ("Not A — plants release oxygen. The answer is B.", "A", F, "mentions A but chooses B"),
            ("Not A — plants release oxygen. The answer is B.", "B", T, "mentions A but chooses B"),
            ("B", "It's not B.", F, "'not B' rejects B"),
            ("Carbon dioxide", "B", T, "option text vs letter"),
            ("Oxygen", "B", F, "option text of A vs letter B"),
            ("A or B, probably B.", "B", T, "hedge that commits to B"),
            ("A or B", "B", F, "does not commit to one option"),
        ],
    ),
    (
        "Which planet is known as the Red Planet?\nA) Venus\nB) Mars\nC) Jupiter\nD) Saturn",
        [
            ("B", "Mars", T, "letter vs option text"),
            ("**B**", "B. Mars", T, None),
            ("The correct option is (B) Mars, not (A) Venus.", "A", F, None),
            ("The correct option is (B) Mars, not (A) Venus.", "B", T, None),
            ("A", "Venus", T, "same (wrong) option as letter and as text"),
            ("Answer: D", "D) Saturn", T, None),
            ("C", "Jupiter is the largest planet, but the Red Planet is Mars, option B.", F, None),
            ("c)", "C", T, None),
        ],
    ),
    (
        "What is the chemical symbol for gold?\nA) Ag\nB) Au\nC) Gd\nD) Go",
        [
            ("B", "Au (B)", T, None),
            ("Au", "Ag", F, None),
            ("B", "A", F, None),
            ("Option B: Au", "answer b", T, None),
            ("Gold's symbol is Au, which is choice B.", "B", T, None),
            ("A) Ag is silver; gold is B) Au.", "A", F, "mentions A first but chooses B"),
        ],
    ),
]

FACT = [
    (
        "What is the capital of France?",
        [
            ("Paris", "The capital of France is Paris.", T, None),
            ("Paris", "Lyon", F, None),
            ("Paris", "paris.", T, None),
            ("It's Paris, not Lyon.", "Lyon", F, "mentions Lyon but answers Paris"),
            ("It's Paris, not Lyon.", "Paris", T, None),
        ],
    ),
    (
        "Who was the first President of the United States?",
        [
            ("George Washington", "Washington", T, None),
            ("George Washington", "John Adams", F, None),
            ("George Washington", "Washington, D.C.", F, "a place, not the person"),
            ("George Washington", "Gen. George Washington (served 1789–1797)", T, None),
            ("George Washington", "George W. Bush", F, "shares tokens, different person"),
        ],
    ),
    (
        "In what year did World War II end?",
        [
            ("1945", "in 1945", T, None),
            ("1945", "1944", F, None),
            ("It ended in 1945, six years after it began in 1939.", "1939", F, "1939 is the start year"),
            ("It ended in 1945, six years after it began in 1939.", "1945", T, None),
            ("1945", "September 2, 1945", T, "more specific, same year"),
        ],
    ),
    (
        "What is the chemical formula for water?",
        [
            ("H2O", "H₂O", T, "subscript digit"),
            ("H2O", "water", F, "names the substance, does not give the formula"),
            ("H2O", "H2O2", F, "hydrogen peroxide"),
            ("H2O", "HO2", F, None),
        ],
    ),
    (
        "What is the common name of the substance with formula H2O?",
        [
            ("Water", "It's water.", T, None),
            ("Water", "H2O", F, "restates the formula from the question instead of naming it"),
        ],
    ),
    (
        "Who wrote 'Pride and Prejudice'?",
        [
            ("Jane Austen", "Austen", T, None),
            ("Jane Austen", "Charlotte Brontë", F, None),
            ("Jane Austen", "It was written by Jane Austen and published in 1813.", T, None),
            ("Jane Austen", "Emily Brontë", F, None),
            ("Austen", "Jane Austin", T, "minor misspelling a grader would accept"),
        ],
    ),
    (
        "What is the largest planet in the Solar System?",
        [
            ("Jupiter", "Jupiter is the largest planet.", T, None),
            ("Jupiter", "Saturn", F, None),
            (
                "Jupiter",
                "Saturn is second; the largest is Jupiter.",
                T,
                "mentions Saturn but answers Jupiter",
            ),
            ("Saturn is second; the largest is Jupiter.", "Saturn", F, None),
        ],
    ),
    (
        "What is the boiling point of water at sea level, in degrees Celsius?",
        [
            ("100 °C", "100 degrees Celsius", T, None),
            ("100 °C", "212 °F", F, "the question asks for Celsius; units must match"),
            ("100 °C", "100", T, "the question fixes the unit"),
        ],
    ),
    (
        "Who painted the Mona Lisa?",
        [
            ("Leonardo da Vinci", "da Vinci", T, None),
            ("Leonardo da Vinci", "Leonardo", T, None),
            ("Leonardo da Vinci", "Michelangelo", F, None),
            ("Leonardo da Vinci", "Leonardo DiCaprio", F, "shares a token, different person"),
        ],
    ),
    (
        "What is the smallest prime number?",
        [
            ("2", "Two", T, None),
            ("2", "1", F, None),
            ("2", "The smallest prime is 2, the only even prime.", T, None),
        ],
    ),
    (
        "What is the currency of Japan?",
        [
            ("Yen", "The Japanese yen (¥)", T, None),
            ("Yen", "Yuan", F, None),
            ("Yen", "Won", F, None),
        ],
    ),
    (
        "What is the longest river in Africa?",
        [
            ("The Nile", "Nile", T, None),
            ("Nile", "Congo", F, None),
            ("Nile", "the Nile River", T, None),
        ],
    ),
    (
        "Which element has atomic number 1?",
        [
            ("Hydrogen", "H", T, "symbol vs name"),
            ("Hydrogen", "Helium", F, None),
            ("Hydrogen", "H (hydrogen)", T, None),
            ("H", "He", F, None),
        ],
    ),
    (
        "Who developed the theory of general relativity?",
        [
            ("Albert Einstein", "Einstein", T, None),
            ("Einstein", "Newton", F, None),
            ("Einstein", "Einstein, building on Riemann's geometry", T, None),
            (
                "Newton's gravity was superseded by Einstein's theory.",
                "Newton",
                F,
                "mentions Newton but credits Einstein",
            ),
        ],
    ),
    (
        "In which country is the city of Kyoto?",
        [
            ("Japan", "Kyoto is in Japan.", T, None),
            ("Japan", "China", F, None),
        ],
    ),
    (
        "What is the freezing point of water, in degrees Fahrenheit?",
        [
            ("32 °F", "32 degrees Fahrenheit", T, None),
            ("32 °F", "32 °C", F, "different units"),
            ("32 °F", "0 °F", F, None),
        ],
    ),
    (
        "How many continents are there by the most common English-language convention?",
        [
            ("Seven", "7", T, None),
            ("7", "6", F, None),
        ],
    ),
    (
        "What is the hardest naturally occurring mineral?",
        [
            ("Diamond", "diamond.", T, None),
            ("Diamond", "Graphite", F, None),
            ("Diamond", "Quartz", F, None),
        ],
    ),
    (
        "Who was the first person to walk on the Moon?",
        [
            ("Neil Armstrong", "Armstrong", T, None),
            ("Neil Armstrong", "Buzz Aldrin", F, None),
            ("Neil Armstrong", "Louis Armstrong", F, "shares a token, different person"),
            ("Neil Armstrong, followed by Buzz Aldrin", "Buzz Aldrin", F, None),
        ],
    ),
]

FREE = [
    (
        "How should I make sure a file gets closed in Python?",
        [
            (
                "Use a context manager to close the file.",
                "Wrap it in a with-statement so the file is closed.",
                T,
                None,
            ),
            (
                "Use a with statement.",
                "Call f.close() in a finally block.",
                F,
                "two different recommendations",
            ),
        ],
    ),
    (
        "What is the time complexity of merge sort?",
        [
            ("The function is O(n log n).", "The function is O(n^2).", F, None),
            ("O(n log n)", "It runs in n log n time.", T, None),
            ("O(n log n) in the worst case.", "Θ(n log n) in every case.", T, None),
            ("O(n log n)", "O(log n)", F, None),
        ],
    ),
    (
        "Why does `for i in range(10): print(i)` never print 10?",
        [
            (
                "Because range(10) stops before 10; it goes from 0 to 9.",
                "range excludes its upper bound, so the last value is 9.",
                T,
                None,
            ),
            (
                "Because range(10) stops before 10; it goes from 0 to 9.",
                "Because range starts counting at 1.",
                F,
                None,
            ),
        ],
    ),
    (
        "What does HTTP status 404 mean?",
        [
            (
                "The server could not find the requested resource.",
                "404 means Not Found: nothing exists at that URL.",
                T,
                None,
            ),
            (
                "The server could not find the requested resource.",
                "The server hit an internal error.",
                F,
                None,
            ),
            ("Not Found", "Forbidden", F, None),
        ],
    ),
    (
        "Why is the sky blue?",
        [
            (
                "Shorter blue wavelengths are scattered more by air molecules (Rayleigh scattering).",
                "Air scatters blue light more strongly than red, because scattering rises sharply at short wavelengths.",
                T,
                None,
            ),
            (
                "Shorter blue wavelengths are scattered more by air molecules.",
                "The sky reflects the blue of the oceans.",
                F,
                None,
            ),
            ("Rayleigh scattering by air molecules.", "Mie scattering by dust particles.", F, None),
        ],
    ),
    (
        "What does `git stash` do?",
        [
            (
                "It saves your uncommitted changes and reverts the working tree to HEAD.",
                "It shelves local modifications so you get a clean working directory, and you can reapply them later.",
                T,
                None,
            ),
            (
                "It saves your uncommitted changes and reverts the working tree to HEAD.",
                "It permanently discards your uncommitted changes.",
                F,
                None,
            ),
            ("It shelves your local changes for later.", "It commits your changes to a new branch.", F, None),
        ],
    ),
    (
        "Should I use a list or a set when I test membership many times?",
        [
            (
                "Use a set; membership checks are O(1) on average versus O(n) for a list.",
                "A set, because lookups are hashed and much faster than scanning a list.",
                T,
                None,
            ),
            (
                "Use a set; membership checks are O(1) on average versus O(n) for a list.",
                "Use a list; it is faster for membership tests.",
                F,
                None,
            ),
            ("Use a set.", "Don't use a set; use a list.", F, "'set' appears in both, opposite advice"),
        ],
    ),
    (
        "What causes the seasons on Earth?",
        [
            (
                "The tilt of Earth's axis.",
                "Earth's axial tilt changes how directly sunlight hits each hemisphere over the year.",
                T,
                None,
            ),
            ("The tilt of Earth's axis.", "Earth's changing distance from the Sun.", F, None),
            (
                "The tilt of Earth's axis, not its distance from the Sun.",
                "Changes in Earth's distance from the Sun.",
                F,
                "mentions distance only to reject it",
            ),
        ],
    ),
    (
        "How do I prevent SQL injection?",
        [
            (
                "Use parameterized queries instead of string concatenation.",
                "Pass user input as bound parameters to prepared statements rather than formatting it into the SQL.",
                T,
                None,
            ),
            (
                "Use parameterized queries instead of string concatenation.",
                "Escape the quotes in user input by hand before building the query string.",
                F,
                None,
            ),
            (
                "Use parameterized queries.",
                "Use string concatenation, but sanitize the input first.",
                F,
                None,
            ),
        ],
    ),
    (
        "Why does 0.1 + 0.2 not equal 0.3 in floating point?",
        [
            (
                "Because 0.1 and 0.2 can't be represented exactly in binary, so rounding errors add up.",
                "Binary floating point stores approximations of those decimals, and the small representation errors make the sum slightly off.",
                T,
                None,
            ),
            (
                "Because 0.1 and 0.2 can't be represented exactly in binary.",
                "Because the language has a bug in its addition routine.",
                F,
                None,
            ),
        ],
    ),
    (
        "What is the difference between a process and a thread?",
        [
            (
                "Threads share their process's memory; separate processes have their own address spaces.",
                "Processes are isolated with separate memory, while threads within a process share memory.",
                T,
                None,
            ),
            (
                "Threads share their process's memory; separate processes have their own address spaces.",
                "Processes share memory, while each thread has its own separate address space.",
                F,
                "same words, roles swapped",
            ),
        ],
    ),
    (
        "Does increasing the learning rate always speed up training?",
        [
            (
                "No; too high a learning rate can make training diverge.",
                "Not always—if it's too large, the loss can oscillate or blow up.",
                T,
                None,
            ),
            (
                "No; too high a learning rate can make training diverge.",
                "Yes, a higher learning rate always converges faster.",
                F,
                None,
            ),
        ],
    ),
    (
        "What does `git push --force` do?",
        [
            (
                "It overwrites the remote branch with your local history, even if that discards remote commits.",
                "Force-pushing replaces the remote branch's history with yours, possibly losing other people's commits.",
                T,
                None,
            ),
            (
                "It overwrites the remote branch with your local history.",
                "It automatically merges the remote changes into yours before pushing.",
                F,
                None,
            ),
        ],
    ),
    (
        "What is the main function of red blood cells?",
        [
            (
                "They carry oxygen from the lungs to the body's tissues.",
                "Red blood cells transport oxygen around the body using hemoglobin.",
                T,
                None,
            ),
            ("They carry oxygen from the lungs to the body's tissues.", "They fight infections.", F, None),
            (
                "They carry oxygen to the tissues.",
                "They carry carbon dioxide to the lungs, not oxygen.",
                F,
                None,
            ),
        ],
    ),
    (
        "What is a good way to store user passwords?",
        [
            (
                "Hash them with a slow, salted algorithm such as bcrypt or Argon2.",
                "Store salted hashes from a password-hashing function like Argon2 or bcrypt, never plaintext.",
                T,
                None,
            ),
            (
                "Hash them with a slow, salted algorithm such as bcrypt or Argon2.",
                "Encrypt them with AES and keep the key on the server.",
                F,
                None,
            ),
            ("Hash them with SHA-256 and no salt.", "Hash them with bcrypt using a salt.", F, None),
        ],
    ),
    (
        "Why is my recursive function raising RecursionError?",
        [
            (
                "Its base case is never reached, so it recurses forever.",
                "The recursion never terminates because the stopping condition is never met.",
                T,
                None,
            ),
            (
                "Its base case is never reached, so it recurses forever.",
                "The recursion is correct but very deep; just raise the recursion limit.",
                F,
                None,
            ),
        ],
    ),
    (
        "What does a p-value of 0.03 mean?",
        [
            (
                "If the null hypothesis were true, there would be a 3% chance of data at least this extreme.",
                "Assuming no real effect, results this extreme or more would occur about 3% of the time.",
                T,
                None,
            ),
            (
                "If the null hypothesis were true, there would be a 3% chance of data at least this extreme.",
                "There is a 3% chance that the null hypothesis is true.",
                F,
                "common misreading",
            ),
            (
                "Assuming no real effect, results this extreme would occur about 3% of the time.",
                "There is a 97% chance the effect is real.",
                F,
                None,
            ),
        ],
    ),
    (
        "What happens if you call `.pop()` on an empty Python list?",
        [
            ("It raises an IndexError.", "You get IndexError: pop from empty list.", T, None),
            ("It raises an IndexError.", "It returns None.", F, None),
        ],
    ),
    (
        "Why does ice float on water?",
        [
            (
                "Ice is less dense than liquid water because its hydrogen-bonded crystal structure is more open.",
                "Water expands when it freezes, so ice has a lower density and floats.",
                T,
                None,
            ),
            (
                "Ice is less dense than liquid water.",
                "Ice is denser than water, but surface tension holds it up.",
                F,
                None,
            ),
        ],
    ),
    (
        "What does `const` mean for an object in JavaScript?",
        [
            (
                "The binding can't be reassigned, but the object's properties can still be changed.",
                "const stops you reassigning the variable; it doesn't make the object immutable.",
                T,
                None,
            ),
            (
                "The binding can't be reassigned, but the object's properties can still be changed.",
                "const makes the object deeply immutable.",
                F,
                None,
            ),
        ],
    ),
    (
        "Which is faster for random access by index, an array or a linked list?",
        [
            (
                "An array: indexing is O(1), while a linked list needs O(n) traversal.",
                "Arrays, since you can jump straight to an index; linked lists must walk node by node.",
                T,
                None,
            ),
            (
                "An array: indexing is O(1), while a linked list needs O(n) traversal.",
                "A linked list, because it doesn't need contiguous memory.",
                F,
                None,
            ),
            (
                "An array is faster for random access, a linked list for inserting at the head.",
                "A linked list is faster for random access, an array for inserting at the head.",
                F,
                "same words, roles swapped",
            ),
        ],
    ),
    (
        "What is the leading explanation for the extinction of the non-avian dinosaurs?",
        [
            (
                "An asteroid impact about 66 million years ago.",
                "A large asteroid struck Earth near Chicxulub roughly 66 million years ago.",
                T,
                None,
            ),
            (
                "An asteroid impact about 66 million years ago.",
                "Massive volcanic eruptions about 66 million years ago.",
                F,
                "same date, different cause",
            ),
        ],
    ),
    (
        "How should I handle API keys and other secrets in a Git repository?",
        [
            (
                "Keep them out of the repo, for example in environment variables or a secrets manager.",
                "Don't commit secrets; load them at runtime from env vars or a vault.",
                T,
                None,
            ),
            (
                "Keep them out of the repo, for example in environment variables or a secrets manager.",
                "Commit them, but only to a private repository.",
                F,
                None,
            ),
        ],
    ),
    (
        "For the data [1, 2, 100], how do the median and the mean compare?",
        [
            (
                "The median (2) is robust to the outlier, while the mean (about 34.3) is pulled up by 100.",
                "The mean is dragged upward by the outlier 100, but the median stays at 2.",
                T,
                None,
            ),
            (
                "The median (2) is robust to the outlier, while the mean (about 34.3) is pulled up by 100.",
                "The median is pulled up by the outlier, while the mean stays at 2.",
                F,
                "same words, roles swapped",
            ),
        ],
    ),
    (
        "Why use a virtual environment for a Python project?",
        [
            (
                "To isolate each project's dependencies from other projects and from the system Python.",
                "It keeps a project's packages separate so their versions don't clash with other projects.",
                T,
                None,
            ),
            ("To isolate each project's dependencies.", "To make the Python code run faster.", F, None),
        ],
    ),
    (
        "Did the new model beat the baseline in the evaluation?",
        [
            (
                "The new model beat the baseline by 2 points.",
                "The baseline beat the new model by 2 points.",
                F,
                "same words, roles swapped",
            ),
            (
                "The new model scored 2 points higher than the baseline.",
                "The new model beat the baseline by 2 points.",
                T,
                None,
            ),
            (
                "The new model was 2 points better.",
                "The new model was not better; it was 2 points worse.",
                F,
                None,
            ),
        ],
    ),
    (
        "What does the `finally` clause of a try statement do?",
        [
            (
                "Its code always runs, whether or not an exception was raised.",
                "The finally block executes on every exit from the try, exception or not.",
                T,
                None,
            ),
            (
                "Its code always runs, whether or not an exception was raised.",
                "It runs only if an exception was raised.",
                F,
                None,
            ),
        ],
    ),
    (
        "What is overfitting?",
        [
            (
                "The model fits noise in the training data and generalises poorly to new data.",
                "It memorises the training set, so it does well on training data but badly on unseen data.",
                T,
                None,
            ),
            (
                "The model fits noise in the training data and generalises poorly to new data.",
                "The model is too simple to capture the pattern in the training data.",
                F,
                "describes underfitting",
            ),
        ],
    ),
    (
        "Why does my Python default argument `def f(x=[])` keep old values between calls?",
        [
            (
                "The default list is created once at definition time and shared across calls.",
                "Default values are evaluated only once, when the function is defined, so the same list is reused.",
                T,
                None,
            ),
            (
                "The default list is created once at definition time and shared across calls.",
                "A new list is created on every call, but Python caches the results.",
                F,
                None,
            ),
        ],
    ),
]
