from .best_matching_assigner import BestMatchingAssigner

__all__ = ['BestMatchingAssigner']
