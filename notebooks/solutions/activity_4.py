# An example for hands-on activity 4: your own messages will teach you more
my_spam = [
    "WINNER!! You have been selected for a £900 prize. Call 09061701461 to claim. Valid 12hrs",
    "Free entry: text WIN to 80086 for a chance to win an iPhone! T&Cs apply",
    "URGENT: your account is locked, verify now at bit.ly/secure-login",
]
my_ham = [
    "Running late, see you at 7",
    "Can you pick up milk on your way home?",
    "Congrats on the new job!! Drinks on friday?",  # borderline: "congrats" and "!!" are spammy cues
]
