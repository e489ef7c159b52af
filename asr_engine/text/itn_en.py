"""placeholder"""
def itn_en(text: str) -> str:
    return text
