/* errno.h: the error numbers the kernel returns (negated), with Linux's values. */
#ifndef KERN_ERRNO_H
#define KERN_ERRNO_H

#define ENOENT 2
#define ENOMEM 12
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define ENODEV 19
#define EINVAL 22
#define ENOSYS 38

#endif /* KERN_ERRNO_H */
